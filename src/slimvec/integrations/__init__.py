"""Adapters that let RAG frameworks use a slimvec collection as their vector store.

Each lives in its own module and imports its framework only there (optional extras:
``slimvec[langchain]``, ``slimvec[haystack]``); each persists to an ordinary slimvec
directory with string ids, so a collection built through a framework opens with
``slimvec.open`` and the other way round.
"""
