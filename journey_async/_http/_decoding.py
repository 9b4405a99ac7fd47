"""
Content-Encoding decoded as the body arrives, bounded: a decoder stops
once its output passes the room the body has left under its cap, so a small
compressed body that inflates to gigabytes (a "zip bomb") costs about the
cap in memory: at most the room for gzip and deflate, and for zstd one piece
of 64 KiB more; brotli rounds its output limit up to its own buffer sizes
(brotli 1.2: 32752, 98272, ... 1015728 bytes), so a br bomb may hand back up
to about twice the room before it is refused.

httpx's own decoders have no output limit (zstd's none at all); these use
zlib's ``max_length``, brotli's ``output_buffer_limit`` and a zstandard
stream writer whose output chunks are counted as they come.

gzip and deflate are always decoded; br when the ``brotli`` package (1.2 or
later) is installed, zstd when ``zstandard`` is: ``pip install
'journey-async[compression]'``. `ACCEPT_ENCODING` names exactly those.
"""

from __future__ import annotations

import zlib
from typing import IO, Any, Final, Protocol, cast

import httpx

__all__ = [
    "ACCEPT_ENCODING",
    "CODINGS",
    "MAX_CODINGS",
    "Decoder",
    "Overflow",
    "decoder_for",
    "drop_undecodable",
]

ZSTD_MAX_WINDOW_BYTES: Final[int] = 8 * 1024 * 1024
"""The largest zstd window accepted, so the decoder's own memory is bounded
too: RFC 8878 (section 3.1.1.1.2) asks HTTP senders to stay within 8 MiB."""

_ZSTD_CHUNK_BYTES: Final[int] = 64 * 1024  # each piece the zstd writer hands over

MAX_CODINGS: Final[int] = 5
"""The most content codings undone for one body, as curl, urllib3 and undici
bound them: real responses have one, now and then two. Each coding is a
decoder with state of its own (zlib's window, a zstd context), and a head
within its caps can name 13,000 of them: one response of 12,000 nested gzip
layers cost 400 MB and 3 s of CPU. Past the bound, the body is refused as not
in its coding (`httpx.DecodingError`), before any decoder is made."""


class Overflow(Exception):
    """A decoder's output would be over the room it was given."""


class Decoder(Protocol):
    """One coding's decoder, for one body."""

    def decode(self, data: bytes, room: int) -> bytes:
        """The output for *data*; `Overflow` if it is over *room* bytes,
        `httpx.DecodingError` if *data* is not of the coding."""

    def flush(self) -> None:
        """The body ended: `httpx.DecodingError` if the coding says it is cut short."""


def drop_undecodable(status: int, error: httpx.DecodingError) -> None:
    """
    A body of a response with *status* turned out not to be in its coding
    (*error*). A success's body is the answer: *error* is raised. An error
    response's body is only the words of its message, and its status is
    what the caller acts on (a 401 stops a fan-out, a 503 is retried): the
    caller drops the body and stops reading it, and the response goes on
    without it.
    """
    if 200 <= status < 300:
        raise error


class _Zlib:
    """gzip, and deflate (zlib-wrapped as RFC 9110 says, or raw as some servers send).

    A gzip body may hold several members one after the other (RFC 1952,
    2.2: what ``cat a.gz b.gz`` and servers that compress each flush apart
    send); each is decoded in turn, as gzip and urllib3 do. Bytes after a
    whole member that are not another one are ignored, as before.
    """

    __slots__ = ("_gzip", "_ignore_rest", "_later", "_obj", "_started")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._started = False
        self._later = False  # in a member after the first, none of it decoded yet
        self._ignore_rest = False
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes, room: int) -> bytes:
        if self._ignore_rest:
            return b""
        # A loop, not a call per member: one read may hold thousands of
        # small members (a server compressing each small write apart).
        parts: list[bytes] = []
        while True:
            try:
                output = self._obj.decompress(data, room + 1)
            except zlib.error as exc:
                if self._later:
                    # Not a member: bytes after a whole body, ignored.
                    self._ignore_rest = True
                    break
                if self._gzip or self._started:
                    raise httpx.DecodingError(f"invalid {self._name()} body: {exc}") from None
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                self._started = True
                continue
            self._started = True
            if len(output) > room:
                raise Overflow
            if output:
                self._later = False
                parts.append(output)
                room -= len(output)
            if not (self._gzip and self._obj.eof and self._obj.unused_data):
                break
            # The next member, decoded by a fresh object within what is left.
            data = self._obj.unused_data
            self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
            self._later = True
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def flush(self) -> None:
        if not self._gzip or not self._started or self._ignore_rest or self._obj.eof:
            return
        if not self._later:
            raise httpx.DecodingError("the gzip body ended before its end marker")

    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"


class _Brotli:
    __slots__ = ("_obj", "_started")

    def __init__(self) -> None:
        self._obj = _brotli.Decompressor()
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        obj = self._obj
        self._started = self._started or bool(data)
        try:
            output = obj.process(data, output_buffer_limit=room + 1)
            parts = [output]
            total = len(output)
            # Output held back by the limit comes out on calls without input.
            while total <= room and not obj.can_accept_more_data():
                more = obj.process(b"", output_buffer_limit=room + 1 - total)
                if not more:
                    break
                parts.append(more)
                total += len(more)
        except _brotli.error as exc:
            raise httpx.DecodingError(f"invalid br body: {exc}") from None
        if total > room:
            raise Overflow
        return output if len(parts) == 1 else b"".join(parts)

    def flush(self) -> None:
        # A br stream says where it ends: a body cut short (a close before
        # its end) is refused, as gzip's is.
        if self._started and not self._obj.is_finished():
            raise httpx.DecodingError("the br body ended before its end")


class _Counted:
    """Where the zstd writer puts its output: kept while under the room."""

    __slots__ = ("parts", "room")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.room = 0

    def write(self, data: Any) -> int:
        size = len(data)
        if size > self.room:
            raise Overflow
        self.room -= size
        self.parts.append(bytes(data))
        return size


_ZSTD_MAGIC: Final[int] = 0xFD2FB528
_ZSTD_SKIPPABLE_MASK: Final[int] = 0xFFFFFFF0
_ZSTD_SKIPPABLE_MAGIC: Final[int] = 0x184D2A50


class _ZstdFrames:
    """
    Where a zstd body stands in its frames (RFC 8878, 3.1), read from the
    compressed bytes as they pass: whether the last frame ended. The stream
    writer that decodes within the cap says nothing of it (zstandard's
    ``decompressobj`` does, with ``eof``, but has no output limit), so a
    frame cut short would pass as a shorter body. Only headers are read;
    block contents are skipped by their sizes, so this costs a few steps a
    block. The decoder still checks everything it decodes.
    """

    __slots__ = ("_checksum", "_head", "_last", "_skip", "_want", "started")

    def __init__(self) -> None:
        self.started = False
        self._head = bytearray()  # the header being read: frame, skippable or block
        self._want = 4  # its size so far known; 4: a frame's magic number, at a boundary
        self._skip = 0  # bytes to pass: a block's content, a checksum, a skippable frame
        self._last = True  # the block before the skip was a frame's last (or none is open)
        self._checksum = False

    @property
    def at_boundary(self) -> bool:
        """Every frame begun has ended (none begun: True)."""
        return self._last and self._skip == 0 and not self._head and self._want == 4

    def feed(self, data: bytes) -> None:
        self.started = self.started or bool(data)
        i, end = 0, len(data)
        while i < end:
            if self._skip:
                step = min(self._skip, end - i)
                i += step
                self._skip -= step
                if not self._skip and self._last:
                    self._want = 4  # the frame ended: a boundary
                continue
            take = min(self._want - len(self._head), end - i)
            self._head += data[i : i + take]
            i += take
            if len(self._head) == self._want:
                self._parse()

    def _parse(self) -> None:
        head = self._head
        if self._last:  # a frame's header
            magic = int.from_bytes(head[:4], "little")
            if magic & _ZSTD_SKIPPABLE_MASK == _ZSTD_SKIPPABLE_MAGIC:
                if len(head) < 8:
                    self._want = 8
                    return
                self._skip = int.from_bytes(head[4:8], "little")
            elif magic != _ZSTD_MAGIC:
                raise httpx.DecodingError("invalid zstd body: not a zstd frame")
            else:
                if len(head) < 5:
                    self._want = 5
                    return
                descriptor = head[4]
                single_segment = descriptor >> 5 & 1
                size = 5 + (not single_segment) + (0, 1, 2, 4)[descriptor & 3]
                size += (single_segment, 2, 4, 8)[descriptor >> 6]
                if len(head) < size:
                    self._want = size
                    return
                self._checksum = bool(descriptor >> 2 & 1)
                self._last = False
                self._want = 3  # the first block's header
            head.clear()
            if self._skip == 0 and self._last:
                self._want = 4  # an empty skippable frame: ended already
            return
        block = int.from_bytes(head[:3], "little")
        head.clear()
        kind = block >> 1 & 3
        if kind == 3:
            raise httpx.DecodingError("invalid zstd body: a reserved block type")
        self._skip = 1 if kind == 1 else block >> 3  # RLE: one byte repeated
        if block & 1:  # the frame's last block, then its checksum if it has one
            self._last = True
            self._skip += 4 if self._checksum else 0
            self._want = 4
            # (a last block with nothing to skip ends the frame at once)
        else:
            self._want = 3


class _Zstd:
    """zstd: every frame of the body (RFC 8878 allows several one after the
    other, as gzip's members), each decoded in turn; a body that ends inside
    a frame is refused, as a gzip one that ends before its end marker."""

    __slots__ = ("_frames", "_sink", "_writer")

    def __init__(self) -> None:
        self._sink = _Counted()
        self._frames = _ZstdFrames()
        decompressor = _zstd.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW_BYTES)
        self._writer = decompressor.stream_writer(
            cast("IO[bytes]", self._sink), write_size=_ZSTD_CHUNK_BYTES, closefd=False
        )

    def decode(self, data: bytes, room: int) -> bytes:
        sink = self._sink
        sink.room = room
        try:
            self._writer.write(data)
        except _zstd.ZstdError as exc:
            raise httpx.DecodingError(f"invalid zstd body: {exc}") from None
        self._frames.feed(data)
        output = b"".join(sink.parts)
        sink.parts.clear()
        return output

    def flush(self) -> None:
        # No body at all (a HEAD, a 204) is no frame cut short, as for gzip and br.
        if self._frames.started and not self._frames.at_boundary:
            raise httpx.DecodingError("the zstd body ended before the end of its frame")


try:
    import brotli as _brotli

    _HAS_BROTLI = hasattr(_brotli.Decompressor, "can_accept_more_data")  # 1.2: output limits
except ImportError:  # pragma: no cover - the compression extra is not installed
    _HAS_BROTLI = False

try:
    import zstandard as _zstd

    _HAS_ZSTD = True
except ImportError:  # pragma: no cover - the compression extra is not installed
    _HAS_ZSTD = False

CODINGS: Final[tuple[str, ...]] = (
    "gzip",
    "deflate",
    *(("br",) if _HAS_BROTLI else ()),
    *(("zstd",) if _HAS_ZSTD else ()),
)
"""The content codings decoded here, in the order of preference sent."""

_DECODED: Final[frozenset[bytes]] = frozenset({b"x-gzip", *(c.encode() for c in CODINGS)})

ACCEPT_ENCODING: Final = ", ".join(CODINGS)
"""The ``Accept-Encoding`` header's value: exactly what can be decoded."""


def _one(coding: bytes) -> Decoder | None:
    if coding == b"gzip" or coding == b"x-gzip":
        return _Zlib(gzip=True)
    if coding == b"deflate":
        return _Zlib(gzip=False)
    if coding == b"br" and _HAS_BROTLI:
        return _Brotli()
    if coding == b"zstd" and _HAS_ZSTD:
        return _Zstd()
    # identity, or a coding we did not ask for: the bytes are kept as they
    # are, as httpx does (a body that is not JSON then says so).
    return None


class _Chain:
    """Codings applied one after the other (``gzip, br``): undone in reverse."""

    __slots__ = ("_decoders",)

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes, room: int) -> bytes:
        for decoder in self._decoders:
            data = decoder.decode(data, room)
        return data

    def flush(self) -> None:
        for decoder in self._decoders:
            decoder.flush()


def decoder_for(content_encoding: bytes) -> Decoder | None:
    """
    The decoder for a ``Content-Encoding`` value, or None when there is
    nothing to undo; `httpx.DecodingError` for more than `MAX_CODINGS`
    codings to undo.
    """
    codings = [c.strip().lower() for c in content_encoding.split(b",")]
    undone = [c for c in codings if c in _DECODED]
    if len(undone) > MAX_CODINGS:
        raise httpx.DecodingError(
            f"the body names {len(undone)} content codings to undo, more than the "
            f"{MAX_CODINGS} decoded at most"
        )
    decoders = [d for d in map(_one, reversed(undone)) if d is not None]
    if not decoders:
        return None
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)
