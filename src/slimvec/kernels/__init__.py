"""Compiled and vectorised scan kernels shared by the codecs."""
