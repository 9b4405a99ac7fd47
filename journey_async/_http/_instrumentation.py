"""
The wrappers tracers put around httpx's transport, and a send of our own
run through them.

OpenTelemetry's ``HTTPXClientInstrumentor().instrument()`` wraps
`httpx.AsyncHTTPTransport.handle_async_request` in a wrapt ``FunctionWrapper``
(``wrapt.wrap_function_wrapper``): a span around each call, with its
attributes, the ``traceparent`` header put into the request, the caller's
hooks. None of that needs httpcore, so `HTTP11Transport` keeps sending the
request itself and runs that send through the wrappers (`send_through`), as
wrapt would have run httpx's method: one span per attempt, made by the
instrumentation, for the fast path's cost plus the span's.

`wrappers` tells the transport, per request, which of three cases holds:

- nothing patched (``()``): send as usual;
- only wrapt ``FunctionWrapper``\\ s, layered over httpx's own function, and
  httpcore's pool untouched: the wrapper functions, outermost first, to send
  through;
- anything else (``None``): pytest-httpx's replacement function, a wrapper
  over it or over anything but httpx's function, respx's patch of httpcore's
  pool, a wrapper whose wrapt no longer keeps ``_self_wrapper`` and
  ``__wrapped__``: the transport steps aside to httpx's own, where a mock
  answers and an unknown wrapper runs as it was written to.

The answer is worked out when the patched attributes change and kept with
them: per request, what is checked is that both are the very objects seen
last.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import FunctionType
from typing import Any, Final, TypeAlias

import httpx

__all__ = ["Send", "Wrapper", "send_through", "wrappers"]

Send: TypeAlias = Callable[[httpx.Request], Awaitable[httpx.Response]]
Wrapper: TypeAlias = Callable[[Callable[..., Any], object, tuple[Any, ...], dict[str, Any]], Any]
"""A wrapt wrapper function: ``wrapper(wrapped, instance, args, kwargs)``."""

_METHOD: Final = "handle_async_request"
# The class's own namespace, a live view: reading it sees every patch, and
# gives the object that was set, where reading the attribute through the
# class would bind a wrapt wrapper into a new object on every read.
_TRANSPORT_ATTRIBUTES: Final[Mapping[str, object]] = httpx.AsyncHTTPTransport.__dict__

_UNSEEN: Final = object()
# (httpx's attribute, httpcore's, what they mean): the last seen, replaced
# whole so that a reader never sees a half-updated answer.
_seen: tuple[object, object, tuple[Wrapper, ...] | None] = (_UNSEEN, _UNSEEN, None)


def wrappers() -> tuple[Wrapper, ...] | None:
    """
    What is patched around httpx's transport (see the module's docstring):
    ``()`` when nothing is, the wrapper functions to send through (outermost
    first), or None for the transport to step aside to httpx's own.
    """
    global _seen
    send = _TRANSPORT_ATTRIBUTES.get(_METHOD)
    # httpcore is imported by the first handover (httpx imports it lazily
    # too): a module nobody has imported yet has no pool anyone patched.
    httpcore = sys.modules.get("httpcore")
    pool = None if httpcore is None else httpcore.AsyncConnectionPool.__dict__.get(_METHOD)
    seen = _seen
    if send is seen[0] and pool is seen[1]:
        return seen[2]
    found = None if httpcore is not None and not _own(pool, "httpcore.") else _wrappers_of(send)
    _seen = (send, pool, found)
    return found


def _own(function: object, package: str) -> bool:
    """Whether *function* is the library's own, not a replacement or a wrapper."""
    return type(function) is FunctionType and function.__module__.startswith(package)


def _wrappers_of(send: object) -> tuple[Wrapper, ...] | None:
    """The wrapper functions layered over httpx's own *send*, outermost
    first; None when anything in the chain is not a plain wrapt wrapper or
    it does not end at httpx's function."""
    found: list[Wrapper] = []
    wrapt = sys.modules.get("wrapt")
    while not _own(send, "httpx."):
        # Only wrapt's own class, as wrap_function_wrapper makes it, run the
        # way wrapt runs it: a subclass may bind or call differently, and
        # an ``enabled`` switch is evaluated by wrapt on each call.
        if wrapt is None or type(send) is not getattr(wrapt, "FunctionWrapper", None):
            return None
        wrapper = getattr(send, "_self_wrapper", None)
        inner = getattr(send, "__wrapped__", None)
        if (
            not callable(wrapper)
            or inner is None
            or getattr(send, "_self_enabled", False) is not None
            or getattr(send, "_self_binding", None) != "function"
        ):
            return None
        found.append(wrapper)
        send = inner
    return tuple(found)


async def send_through(
    found: tuple[Wrapper, ...], instance: object, send: Send, request: httpx.Request
) -> httpx.Response:
    """
    *send* (*request*), run through the wrapper functions *found* as wrapt
    runs them around httpx's method: each is called with the next inward
    as ``wrapped``, *instance* as the transport, and ``(request,)``.
    *send* is reached with the request the innermost wrapper passes on
    (OpenTelemetry's carries its ``traceparent`` header).

    *instance* is the transport that does the I/O (`HTTP11Transport`, an
    ``httpx.AsyncBaseTransport``): OpenTelemetry's wrapper reads nothing
    from it, only the request in *args* and the response it gets back.
    """

    # httpx's method is called as handle_async_request(request), or with
    # request= by keyword: the send in its place takes both.
    def wrapped(request: httpx.Request) -> Awaitable[httpx.Response]:
        return send(request)

    call: Callable[..., Any] = wrapped
    for wrapper in reversed(found[1:]):
        call = functools.partial(_layer, wrapper, call, instance)
    response: httpx.Response = await found[0](call, instance, (request,), {})
    return response


def _layer(
    wrapper: Wrapper, wrapped: Callable[..., Any], instance: object, *args: Any, **kwargs: Any
) -> Any:
    """One inner layer, called as the method it stands for."""
    return wrapper(wrapped, instance, args, kwargs)
