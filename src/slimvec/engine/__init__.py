"""The storage engine beneath the public collections.

``view`` (what a handle reads: one commit loaded, the log folded in; the directory layout),
``writer`` (transactions, the log, segments, merges, compaction, commit hooks), ``searcher``
and ``planner`` (which plan answers a search, and running it on one view), ``ids`` (the
caller's ids over internal int64 ids), ``rows`` (what a row is: the row format a multi-vector
collection replaces), ``pin`` (how a call keeps one view while threads share a handle),
``background`` (large IVF trainings on a thread of the handle) and ``create`` (a new
collection's manifest and directory).
"""
