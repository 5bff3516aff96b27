"""Search: the funnel pipeline of codec stages (``funnel``) and the fusion of several ranked
lists, such as vector and BM25 results (``fusion``)."""
