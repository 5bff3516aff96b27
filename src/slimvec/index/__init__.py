"""Indexes that decide which first-stage codes a query reads (``ivf``: inverted lists)."""
