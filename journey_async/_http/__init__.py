"""
The default transport: HTTP/1.1 on asyncio, one job per module.

- `_limits`: every size cap on a response, and `ResponseTooLarge`.
- `_decoding`: Content-Encoding undone as the body arrives, within the cap.
- `_wire`: a request's bytes, and responses parsed from bytes (llhttp).
- `_connection`: one connection, an `asyncio.Protocol`, and `connect`.
- `_resolver`: a name's addresses, asked once for the connections that open
  within a few seconds.
- `_eyeballs`: happy eyeballs over a name's addresses, leaving no socket open
  when cancelled.
- `_pool`: the bound on open connections and the idle ones per origin.
- `_transport`: `HTTP11Transport`, the `httpx.AsyncBaseTransport` face, and
  the handovers to httpx's own transport.
- `_instrumentation`: the wrappers tracers put around httpx's transport
  (OpenTelemetry's), and the fast path's send run through them.
- `_tls`: the client's `ssl.SSLContext`, and refused certificates.
- `_proxy`: which proxy a request goes through, checked up front.
- `_timeouts`: the wall-clock bounds on an attempt and on a whole call.
- `_body`: a response read whole within its cap, from any transport or
  client (`send_and_read`, `sender_for_client`).
"""

from ._body import send_and_read, sender_for_client, sender_for_owned
from ._decoding import ACCEPT_ENCODING
from ._limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_REMOVAL_ACK_BYTES,
    MAX_RESPONSE_BYTES_EXTENSION,
    ResponseTooLarge,
)
from ._pool import OTHER_LOOP_MESSAGE
from ._proxy import check_proxy, proxy_for, redacted
from ._timeouts import (
    ATTEMPT_TIMEOUT_EXTENSION,
    AttemptTimeout,
    CallDeadlineExceeded,
    attempt_timed_out,
    run_within,
)
from ._tls import (
    CertificateVerifyFailed,
    CertTypes,
    Misconfigured,
    VerifyTypes,
    WrongScheme,
    build_ssl_context,
)
from ._transport import DEFAULT_KEEPALIVE_EXPIRY, HTTP11Transport, default_transport
from ._wire import PREPARED_HEAD_EXTENSION, RequestBytes, header_lines

__all__ = [
    "ACCEPT_ENCODING",
    "ATTEMPT_TIMEOUT_EXTENSION",
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_REMOVAL_ACK_BYTES",
    "MAX_RESPONSE_BYTES_EXTENSION",
    "OTHER_LOOP_MESSAGE",
    "PREPARED_HEAD_EXTENSION",
    "AttemptTimeout",
    "CallDeadlineExceeded",
    "CertTypes",
    "CertificateVerifyFailed",
    "HTTP11Transport",
    "Misconfigured",
    "RequestBytes",
    "ResponseTooLarge",
    "VerifyTypes",
    "WrongScheme",
    "attempt_timed_out",
    "build_ssl_context",
    "check_proxy",
    "default_transport",
    "header_lines",
    "proxy_for",
    "redacted",
    "run_within",
    "send_and_read",
    "sender_for_client",
    "sender_for_owned",
]
