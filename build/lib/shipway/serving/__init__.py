"""Serving: the HTTP runtime (ASGI app, micro-batching, metrics, pre-fork server)."""
