"""
The one place that hides the API token: errors, log records and the command
line all blot it out with `redact` before they show any text.

Blot out first, cut short after: a preview truncated before redaction would
show a prefix of a token that straddles the cut.

Where a token counts as found: a token of `ANYWHERE_LENGTH` characters or
more (real Pushwoosh tokens are far longer) wherever it appears; a shorter one
(``test-token`` in users' tests, a one-letter token in a fuzzer) only where it
is not part of a longer run of letters and digits, so that the token ``t``
does not turn "Not Found" into "No[secret] Found".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Final

__all__ = ["ANYWHERE_LENGTH", "REDACTED", "redact", "redact_bytes"]

REDACTED: Final = "[secret]"
"""What stands for the API token wherever text might otherwise show it."""

ANYWHERE_LENGTH: Final = 16
"""Characters from which a token is blotted out wherever it appears, even
inside a longer word: a random string that long is never a coincidence."""

_RUN_CHARACTER: Final = "A-Za-z0-9"


@functools.lru_cache(maxsize=64)
def _pattern(secret: str) -> re.Pattern[str]:
    escaped = re.escape(secret)
    if len(secret) >= ANYWHERE_LENGTH:
        return re.compile(escaped)
    return re.compile(f"(?<![{_RUN_CHARACTER}]){escaped}(?![{_RUN_CHARACTER}])")


def redact(text: str, secrets: str | Iterable[str] | None) -> str:
    """
    *text* with every secret of *secrets* (one string, several, or `None`
    for none) replaced by `REDACTED`. Empty secrets are ignored.
    """
    if secrets is None:
        return text
    if isinstance(secrets, str):
        secrets = (secrets,)
    # Longest first: a secret inside another is not left half replaced.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = _pattern(secret).sub(REDACTED, text)
    return text


def redact_bytes(content: bytes, secrets: str | Iterable[str] | None) -> bytes:
    """`redact` for a body of bytes: any bytes outside the token kept as they
    were, UTF-8 or not."""
    text = content.decode("utf-8", "surrogateescape")
    clean = redact(text, secrets)
    return content if clean == text else clean.encode("utf-8", "surrogateescape")
