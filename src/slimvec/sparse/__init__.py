"""Sparse (lexical) retrieval: a BM25 index that lives inside a collection."""

from slimvec.sparse.bm25 import BM25Index

__all__ = ["BM25Index"]
