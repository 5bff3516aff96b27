"""The HTTP routes, one router per concern; each route is its library call and nothing else
(the shared steps are :meth:`slimvec.server.service.Service.call`)."""
