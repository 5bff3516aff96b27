"""The storage engine beneath the public collections: how a call sees one consistent view."""
