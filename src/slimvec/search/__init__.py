"""Search: the funnel pipeline and (later) fusion and filters."""
