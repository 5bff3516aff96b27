"""Remote collections: the HTTP client of ``slimvec serve`` and the wire format both share.

``slimvec.connect(url)`` lives here, below the server (``slimvec.server`` imports this
package, never the reverse), so the public facade can offer it without importing the server.
"""
