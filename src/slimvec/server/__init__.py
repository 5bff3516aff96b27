"""slimvec over HTTP: ``slimvec serve`` (``app``), API keys (``auth``), the web page (``page``)
and the Python client (``client``, what ``slimvec.connect`` returns).

Needs the ``server`` extra (``pip install 'slimvec[server]'``); the core package never imports
this one. Importing it imports nothing heavy: the client needs only httpx, the app FastAPI.
"""
