"""Qdrant's REST routes, one router per concern, each built from the shared
:class:`slimvec.server.qdrant.context.Context`: ``status`` (version, health), ``collections``
(and their payload index schemas), ``points`` (write, read, scroll, count, delete),
``payload`` (rewrite selected points' payloads), ``query`` (query and the legacy search)."""
