"""
The transport requests go out through when the caller hands in none.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import httpx

__all__ = ["default_transport"]


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """
    The default inner transport, its pool sized to *max_connections*.
    """
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections))
