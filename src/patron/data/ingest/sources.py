"""Open an input file as a stream of UTF-8 bytes, whatever its compression and encoding.

* **Compression** is recognised by content, not by name: gzip, zstd, bzip2 and xz by their magic
  bytes (a gzip file named ``orders.csv`` is read; a plain file named ``orders.csv.gz`` too).
  Several concatenated gzip members (or bzip2/xz streams) are read one after the other.
* **Encoding**: a byte-order mark decides it (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE; the mark is not
  part of the data) unless ``encoding`` names a non-Unicode encoding; otherwise ``encoding``
  (default :data:`DEFAULT_ENCODING`, UTF-8). Text that starts like UTF-16 without a mark (every
  other byte zero) is read as UTF-16 when no ``encoding`` is given.
* **Undecodable bytes** are never replaced silently: they reach the readers as invalid UTF-8
  (for UTF-8 input, the bytes themselves; for other encodings, each undecodable byte as an
  escaped surrogate), and the readers reject the row that holds them with the bytes shown
  (:func:`shown`).
* **Truncated compressed data** (a download cut short) ends the stream where it breaks: the text
  before is exactly the file's, the partial record at the break is dropped, and
  :attr:`Source.broke` says where (:class:`Break`); the readers turn it into a reject, and ingest
  stores the rows before it and fails with one line. **Damaged** compressed data (a checksum or
  format error) refuses the whole file: the text decoded before the damage was detected may
  already be wrong.
"""

from __future__ import annotations

import bz2
import codecs
import io
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from patron.errors import InputError

DEFAULT_ENCODING = "utf-8"
"""Encoding of text input when neither a byte-order mark nor ``--encoding`` says otherwise."""

CHUNK_BYTES = 1 << 20
"""Compressed bytes read at a time (1 MiB)."""

COMPRESSIONS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
"""Magic bytes of the compressed formats read, and their names."""

BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
"""Byte-order marks, longest first where one starts another."""

PARQUET_MAGIC = b"PAR1"
"""First bytes of a Parquet file."""

_ESCAPE_ERRORS = "patron-escape-byte"


def _escape_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each undecodable byte becomes the lone surrogate U+DC00 + byte (as
    Python's ``surrogateescape``, but for every byte value, so UTF-16/32 input works too)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error(_ESCAPE_ERRORS, _escape_bytes)

_ESCAPED = re.compile(rb"\xed[\xb0-\xb3][\x80-\xbf]")
"""UTF-8 (surrogatepass) of U+DC00..U+DCFF: a byte the source encoding could not decode."""


def shown(raw: bytes, limit: int = 60) -> str:
    """``raw`` (UTF-8 that may hold invalid bytes) as readable text: undecodable bytes as ``\\xNN``."""
    raw = raw[: limit * 4]
    raw = _ESCAPED.sub(lambda m: b"\\x%02x" % (((m[0][1] & 0x3F) << 6 | (m[0][2] & 0x3F)) & 0xFF), raw)
    return raw.decode("utf-8", "backslashreplace")[:limit]


def first_bad_bytes(raw: bytes) -> tuple[int, str]:
    """Offset (0-based) and text (``\\xNN``) of the first bytes of ``raw`` that are not UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start, shown(raw[exc.start:exc.end] if raw[exc.start] != 0xED else raw[exc.start:exc.start + 3], 16)
    return -1, ""


def decode_error(raw: bytes, encoding: str, where: str) -> str:
    """The reason for a value or line that holds bytes ``encoding`` cannot decode."""
    at, text = first_bad_bytes(raw)
    hint = "give --encoding (e.g. --encoding latin-1 or cp1252)" if encoding == "utf-8" else "check --encoding"
    return f"{where}: bytes {text} at byte {at + 1} are not valid {encoding}; is the file in another encoding? {hint}"


@dataclass
class Break:
    """Where compressed data ended early or was damaged."""

    compression: str
    data_bytes: int
    """Decompressed bytes delivered before the break (the dropped partial record excluded)."""
    file_bytes: int
    """Compressed bytes of the file read when it broke (as far as the decompressor tells)."""
    reason: str
    truncated: bool
    """True when the data ends early: the text before is exactly the file's (a prefix). False when
    it is damaged: the text decoded before the damage was found may already be wrong (a checksum
    covers a whole gzip member or bzip2/xz block), so none of it can be trusted."""
    tail: bytes = b""
    """The partial record at the break, dropped."""

    def describe(self) -> str:
        rest = "the rest of the file could not be read" if self.truncated else "no row of the file can be trusted"
        return f"the {self.compression} data {self.reason} at byte {self.file_bytes:,} of the file (after {self.data_bytes:,} bytes of text); {rest}"


@dataclass
class Source:
    """An input file and how to read it as UTF-8 text (see the module docstring)."""

    path: Path
    compression: str | None
    encoding: str
    bom: int
    """Bytes of byte-order mark at the start of the (decompressed) data."""
    broke: Break | None = None

    @property
    def native(self) -> bool:
        """True when the file's bytes are the UTF-8 text itself (read straight from the file)."""
        return self.compression is None and self.encoding == "utf-8"

    def open(self) -> io.BufferedReader:
        """A fresh stream of the UTF-8 text, without the byte-order mark."""
        self.broke = None
        if self.native:
            try:
                stream = open(self.path, "rb")  # the caller closes it
            except OSError as exc:
                raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        else:
            stream = io.BufferedReader(_TextStream(self), buffer_size=CHUNK_BYTES)
        if self.bom and self.encoding == "utf-8":
            stream.read(self.bom)
        return stream


def _magic(head: bytes) -> str | None:
    return next((name for magic, name in COMPRESSIONS if head.startswith(magic)), None)


def _read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def sniff(path: Path) -> tuple[bytes, str | None]:
    """The first bytes of ``path`` and its compression (by magic bytes), None when plain."""
    head = _read_head(path, 8)
    return head, _magic(head)


def open_source(path: Path, encoding: str | None = None) -> Source:
    """How to read ``path`` as text: compression by content, encoding by byte-order mark, else
    ``encoding`` (default UTF-8).

    Raises :class:`InputError` for an unknown encoding name."""
    _, compression = sniff(path)
    given = None
    if encoding:
        try:
            info = codecs.lookup(encoding)
            if not info._is_text_encoding:  # base64, rot13, zlib, ...: bytes to bytes, str to str
                raise LookupError(encoding)
            given = info.name
        except LookupError:
            raise InputError(f"encoding {encoding!r} is not a text encoding Python knows (e.g. utf-8, latin-1, cp1252, utf-16)",
                             parameters=("encoding",)) from None
    source = Source(path, compression, "utf-8", 0)
    head = b""
    chunks = _chunks(source, lambda _b: None)
    try:
        for chunk in chunks:
            head += chunk
            if len(head) >= 4:
                break
    finally:
        chunks.close()
    bom = next(((len(m), enc) for m, enc in BOMS if head.startswith(m)), None)
    if bom and (given is None or given.startswith("utf")):
        source.bom, source.encoding = bom
    elif given is not None:
        # Without a mark, UTF-16 and UTF-32 are little-endian (Python's decoders would refuse).
        source.encoding = {"utf-8-sig": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}.get(given, given)
        source.bom = 3 if given == "utf-8-sig" and head.startswith(BOMS[0][0]) else 0
    elif len(head) >= 4 and head[0] and not head[1] and head[2] and not head[3]:
        source.encoding = "utf-16-le"
    elif len(head) >= 4 and not head[0] and head[1] and not head[2] and head[3]:
        source.encoding = "utf-16-be"
    return source


class _Broken(Exception):
    def __init__(self, reason: str, file_bytes: int, *, truncated: bool) -> None:
        super().__init__(reason)
        self.reason, self.file_bytes, self.truncated = reason, file_bytes, truncated


def _stream_decompressor(compression: str) -> Callable[[], object]:
    if compression == "gzip":
        return lambda: zlib.decompressobj(wbits=31)
    if compression == "bzip2":
        return bz2.BZ2Decompressor
    return lzma.LZMADecompressor


def _chunks(source: Source, on_break: Callable[[_Broken], None]) -> Iterator[bytes]:
    """Decompressed bytes of ``source``'s file, chunk by chunk; on damaged or truncated data,
    ``on_break`` is called and the chunks end."""
    path, compression = source.path, source.compression
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        if compression is None:
            while chunk := fh.read(CHUNK_BYTES):
                yield chunk
        elif compression == "zstd":
            yield from _zstd_chunks(fh, on_break)
        else:
            yield from _stream_chunks(fh, compression, on_break)


_DAMAGE = (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError)


def _stream_chunks(fh: io.BufferedReader, compression: str, on_break: Callable[[_Broken], None]) -> Iterator[bytes]:
    """gzip, bzip2 or xz, member after member (or stream after stream)."""
    make = _stream_decompressor(compression)
    d = make()
    used = 0  # compressed bytes read so far
    while data := fh.read(CHUNK_BYTES):
        used += len(data)
        while data:
            if d.eof:  # type: ignore[attr-defined]  # another member or stream follows
                if not data.strip(b"\x00"):
                    break  # zero padding after the last member
                d = make()
            try:
                out = d.decompress(data)  # type: ignore[attr-defined]
            except _DAMAGE as exc:
                on_break(_Broken(f"is damaged ({exc})", used, truncated=False))
                return
            data = d.unused_data if d.eof else b""  # type: ignore[attr-defined]
            if out:
                yield out
    if not d.eof:  # type: ignore[attr-defined]
        on_break(_Broken("ends early (truncated)", used, truncated=True))


def _zstd_chunks(fh: io.BufferedReader, on_break: Callable[[_Broken], None]) -> Iterator[bytes]:
    """zstd through Arrow's codec (patron adds no zstd dependency)."""
    raw = pa.PythonFile(fh, mode="r")
    stream = pa.CompressedInputStream(raw, "zstd")
    try:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
    except (pa.ArrowException, OSError) as exc:
        message = str(exc).splitlines()[0]
        truncated = "truncated" in message.lower()
        on_break(_Broken("ends early (truncated)" if truncated else f"is damaged ({message})", fh.tell(), truncated=truncated))


class _TextStream(io.RawIOBase):
    """UTF-8 bytes of a :class:`Source`: decompressed, transcoded when the encoding is not UTF-8,
    and, for compressed input, held back to the last line break until the data is known whole."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.pending = b""
        self.delivered = 0
        self.done = False
        self.broken: _Broken | None = None
        self.decoder = None if source.encoding == "utf-8" else codecs.getincrementaldecoder(source.encoding)(_ESCAPE_ERRORS)
        self.chunks = _chunks(source, self._on_break)
        self.skip = source.bom if self.decoder is not None else 0

    def _on_break(self, exc: _Broken) -> None:
        self.broken = exc

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        """Add text to ``pending``; False at the end."""
        chunk = next(self.chunks, None)
        if chunk is None:
            if self.decoder is not None:
                self.pending += self._decode(b"", final=True)
            return False
        if self.skip:
            cut = min(self.skip, len(chunk))
            chunk, self.skip = chunk[cut:], self.skip - cut
        self.pending += chunk if self.decoder is None else self._decode(chunk)
        return True

    def _decode(self, chunk: bytes, *, final: bool = False) -> bytes:
        """``chunk`` decoded from the source encoding, as UTF-8 (undecodable bytes escaped)."""
        try:
            return self.decoder.decode(chunk, final=final).encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
        except (UnicodeError, ValueError, TypeError) as exc:  # a codec that cannot escape bytes
            raise InputError(f"{self.source.path}: cannot read the text as {self.source.encoding}: {exc}") from None

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        hold = self.source.compression is not None
        while not self.done:
            ready = self.pending.rfind(b"\n") + 1 if hold else len(self.pending)
            if ready >= len(buffer) or (ready and len(self.pending) >= CHUNK_BYTES):
                break
            if not self._more():
                self.done = True
        if self.done:
            if self.broken is not None:
                cut = self.pending.rfind(b"\n") + 1
                tail, self.pending = self.pending[cut:], self.pending[:cut]
                if self.source.broke is None:
                    self.source.broke = Break(self.source.compression or "", self.delivered + len(self.pending),
                                              self.broken.file_bytes, self.broken.reason, self.broken.truncated, tail)
            ready = len(self.pending)
        else:
            ready = self.pending.rfind(b"\n") + 1 if hold else len(self.pending)
        n = min(len(buffer), ready)
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.delivered += n
        return n
