"""
The default transport: HTTP/1.1 on asyncio, one job per module.

- `_wire`: a request's bytes, and responses parsed from bytes (llhttp).
- `_connection`: one connection, an `asyncio.Protocol`.
- `_pool`: the bound on open connections and the idle ones per origin.
- `_transport`: `HTTP11Transport`, the `httpx.AsyncBaseTransport` face, and
  the handovers to httpx's own transport; `send_and_read`.

.. versionadded:: 0.2.0
"""

from ._transport import DEFAULT_KEEPALIVE_EXPIRY, HTTP11Transport, default_transport, send_and_read

__all__ = ["DEFAULT_KEEPALIVE_EXPIRY", "HTTP11Transport", "default_transport", "send_and_read"]
