"""
The TLS settings of a client, as one `ssl.SSLContext` built here, and what a
failed certificate check becomes.

``verify`` and ``cert`` mean what they mean to httpx, but the context is
built here rather than by httpx, which deprecates ``verify=<path>`` and
``cert=`` with warnings since 0.28: the same context serves the default
transport and its handovers to httpcore.
"""

from __future__ import annotations

import os
import ssl
from typing import TypeAlias

import certifi
import httpx

__all__ = [
    "CertTypes",
    "CertificateVerifyFailed",
    "Misconfigured",
    "VerifyTypes",
    "WrongScheme",
    "build_ssl_context",
    "not_tls",
    "tls_failure",
]

VerifyTypes: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext"
CertTypes: TypeAlias = "str | os.PathLike[str] | tuple[str, str] | tuple[str, str, str]"


class Misconfigured(httpx.ConnectError):
    """The API cannot be reached as the client is configured (its URL, its
    TLS settings). Not retried: the next attempt would fail alike. A connect
    error, so a fan-out stops at it (`journey_async._guard`), as at a refused
    connection."""


class CertificateVerifyFailed(Misconfigured):
    """The server's certificate failed the check (unknown CA, wrong name,
    expired)."""


class WrongScheme(Misconfigured):
    """The server does not speak the URL's scheme: TLS at an http:// URL, or
    plain HTTP at an https:// one."""


def build_ssl_context(
    verify: VerifyTypes = True, cert: CertTypes | None = None, *, trust_env: bool = True
) -> ssl.SSLContext:
    """
    The context for https: *verify* `True` trusts certifi's bundle (or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when *trust_env*, as httpx does),
    a path trusts that CA file or directory, `False` checks nothing, and an
    `ssl.SSLContext` is used as it is. *cert*: the client certificate, a
    file holding it and its key, or ``(cert, key)`` / ``(cert, key, password)``.

    Raises TypeError or ValueError for a setting that is not one of those,
    naming it (never a file's content).
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError(
                "cert= with an ssl.SSLContext as verify=: load the client certificate "
                "into your context (context.load_cert_chain(...)) instead"
            )
        return verify
    if verify is True:
        if trust_env and os.environ.get("SSL_CERT_FILE"):
            context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        elif trust_env and os.environ.get("SSL_CERT_DIR"):
            context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        else:
            context = ssl.create_default_context(cafile=certifi.where())
    elif verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        if os.path.isdir(path):
            context = ssl.create_default_context(capath=path)
        elif os.path.isfile(path):
            context = ssl.create_default_context(cafile=path)
        else:
            raise ValueError(f"verify={path!r}: no such CA bundle file or directory")
    else:
        raise TypeError(
            "verify must be True, False, a CA bundle path or an ssl.SSLContext, "
            f"not {type(verify).__name__}"
        )
    context.set_alpn_protocols(["http/1.1"])
    if cert is not None:
        _load_cert(context, cert)
    return context


def _load_cert(context: ssl.SSLContext, cert: CertTypes) -> None:
    if isinstance(cert, str | os.PathLike):
        parts: tuple[str, ...] = (os.fspath(cert),)
    elif isinstance(cert, tuple) and len(cert) in (2, 3) and all(isinstance(p, str) for p in cert):
        parts = cert
    else:
        raise TypeError("cert must be a path, or a tuple (cert, key) or (cert, key, password)")
    try:
        context.load_cert_chain(*parts)
    except (OSError, ssl.SSLError) as exc:
        # The reason only: the password is one of the parts.
        reason = (
            getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        )
        raise ValueError(
            f"cert={parts[0]!r}: cannot load the client certificate: {reason}"
        ) from None


def tls_failure(exc: BaseException, where: str) -> CertificateVerifyFailed | None:
    """*exc* (or what caused it) as a `CertificateVerifyFailed` naming the
    cause, if it is a failed certificate check; else None."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ssl.SSLCertVerificationError):
            cause = exc.verify_message or exc.reason or "certificate verify failed"
            return CertificateVerifyFailed(
                f"cannot connect to {where}: the server's TLS certificate was refused: {cause}"
                " (verify= and SSL_CERT_FILE say which CAs are trusted)"
            )
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


def not_tls(exc: BaseException) -> bool:
    """Whether *exc* says the server's first bytes were not TLS at all: an
    https URL to a plain http port, whose ``400 Bad Request`` OpenSSL reads
    as a record of a wrong version."""
    return isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER"
