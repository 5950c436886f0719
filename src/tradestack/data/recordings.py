"""Read recorded exchange traffic: the recorder formats found in ``shared/data/ws_messages``.

Three line formats are understood, each yielding :class:`RecordedFrame` in file order:

- cryptofeed v1 text (``URL <-> ts`` connect, ``URL <- ts: payload`` sent, ``ts: payload``
  received, ``URL -> ts: body`` REST response, ``configuration: {...}``);
- cryptofeed v3 zstd JSONL (``{t, conn, ts, addr|url, data}``);
- hftbacktest collector gzip text (``<local receive ts> <frame JSON>``, ns, or µs for ``.dat.gz``).

Our own recorder (``tradestack record``) writes v3-style JSONL, gzip-compressed, with integer
``ts_ns`` and ``snapshot`` records, so every recording replays through the same reader.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tradestack.data.errors import DataValidationError

log = logging.getLogger(__name__)


class FrameKind(StrEnum):
    """What a recorded line is."""

    CONNECT = "connect"
    SEND = "send"
    RECV = "recv"
    REST = "rest"
    HEADER = "header"
    SNAPSHOT = "snapshot"  # a REST book snapshot as ccxt parsed it (our recorder); conn = symbol
    CONTROL = "control"  # a book reset or stale mark (our recorder); conn = symbol


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One recorded line: a received frame, a sent frame, a connect, or a REST response body.

    ``url`` is the WebSocket address (connect/send; for received frames the connection's last
    connect address when the format has one) or the REST request URL. ``conn`` names the
    connection; frames of one connection share it. ``ts_ns`` is the recorder's receive time.
    """

    kind: FrameKind
    ts_ns: int
    payload: str
    url: str = ""
    conn: str = ""


_V1_CONNECT = re.compile(r"^(?P<url>\S+) <-> (?P<ts>[0-9.]+)$")
_V1_SEND = re.compile(r"^(?P<url>\S+) <- (?P<ts>[0-9.]+): (?P<data>.*)$", re.S)
_V1_REST = re.compile(r"^(?P<url>\S+) -> (?P<ts>[0-9.]+): (?P<data>.*)$", re.S)
_V1_RECV = re.compile(r"^(?P<ts>[0-9]+\.?[0-9]*): (?P<data>.*)$", re.S)
_HFT_LINE = re.compile(r"^(?P<ts>[0-9]+) (?P<data>.*)$", re.S)


def seconds_to_ns(text: str) -> int:
    """Convert a decimal seconds string to integer nanoseconds without float rounding."""
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


_CHUNK = 1 << 20


def _gzip_chunks(path: Path, cut: list[bool]) -> Iterator[bytes]:
    """Decompressed bytes of a gzip file, streamed. A file cut short (a recorder killed before
    it closed the file) yields everything up to the cut, with a warning, instead of failing."""
    inflater = zlib.decompressobj(31)
    member_open = False
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            while chunk:
                member_open = True
                yield inflater.decompress(chunk)
                if inflater.eof:  # another gzip member may follow (appended files)
                    chunk, member_open = inflater.unused_data, False
                    inflater = zlib.decompressobj(31)
                else:
                    chunk = b""
    if member_open and not inflater.eof:
        cut.append(True)
        yield inflater.flush()
        log.warning("%s ends without a gzip trailer: read up to where it was cut", path)


def _lines(path: Path) -> Iterator[str]:
    """The text lines of a plain, gzip or zstd file, streamed (recordings can be gigabytes)."""
    with path.open("rb") as probe:
        magic = probe.read(4)
    cut: list[bool] = []
    if magic[:2] == b"\x1f\x8b":
        chunks: Iterator[bytes] = _gzip_chunks(path, cut)
    elif magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        def zstd_chunks() -> Iterator[bytes]:
            with path.open("rb") as raw:
                reader = zstandard.ZstdDecompressor().stream_reader(raw)
                while chunk := reader.read(_CHUNK):
                    yield chunk

        chunks = zstd_chunks()
    else:

        def plain_chunks() -> Iterator[bytes]:
            with path.open("rb") as raw:
                while chunk := raw.read(_CHUNK):
                    yield chunk

        chunks = plain_chunks()
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8")
    if pending and not cut:  # the partial last line of a cut file is dropped
        yield pending.decode("utf-8")


def detect_format(path: Path) -> str:
    """Return ``cryptofeed_v1``, ``cryptofeed_v3`` or ``hftbacktest`` from the file's content."""
    for line in _lines(path):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("{") and '"t"' in line[:20]:
            return "cryptofeed_v3"
        if _HFT_LINE.match(line) and not _V1_RECV.match(line):
            return "hftbacktest"
        return "cryptofeed_v1"
    raise DataValidationError(path, "recording is empty")


def read_recording(path: str | Path) -> Iterator[RecordedFrame]:
    """Yield the frames of a recording in file order, whatever its format.

    Raises :class:`DataValidationError` naming the line for a line no format explains.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "cryptofeed_v3":
        yield from _read_v3(path)
    elif fmt == "hftbacktest":
        yield from _read_hftbacktest(path)
    else:
        yield from _read_v1(path)


def _read_v1(path: Path) -> Iterator[RecordedFrame]:
    conn = path.name
    current_url = ""
    for number, line in enumerate(_lines(path), 1):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("configuration: "):
            yield RecordedFrame(FrameKind.HEADER, 0, line[len("configuration: ") :], "", conn)
            continue
        if m := _V1_RECV.match(line):
            yield RecordedFrame(
                FrameKind.RECV, seconds_to_ns(m["ts"]), m["data"], current_url, conn
            )
        elif m := _V1_CONNECT.match(line):
            current_url = m["url"]
            yield RecordedFrame(FrameKind.CONNECT, seconds_to_ns(m["ts"]), "", m["url"], conn)
        elif m := _V1_SEND.match(line):
            yield RecordedFrame(FrameKind.SEND, seconds_to_ns(m["ts"]), m["data"], m["url"], conn)
        elif m := _V1_REST.match(line):
            yield RecordedFrame(FrameKind.REST, seconds_to_ns(m["ts"]), m["data"], m["url"], conn)
        else:
            raise DataValidationError(path, "unrecognised recorder line", row=number)


_V3_KINDS = {
    "connect": FrameKind.CONNECT,
    "send": FrameKind.SEND,
    "recv": FrameKind.RECV,
    "http": FrameKind.REST,
    "header": FrameKind.HEADER,
    "snapshot": FrameKind.SNAPSHOT,
    "control": FrameKind.CONTROL,
}


def _read_v3(path: Path) -> Iterator[RecordedFrame]:
    urls: dict[str, str] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            kind = _V3_KINDS[record["t"]]
        except (ValueError, KeyError) as exc:
            raise DataValidationError(path, f"bad JSONL record: {exc}", row=number) from exc
        conn = str(record.get("conn", record.get("symbol", "")))
        url = str(record.get("addr") or record.get("url") or urls.get(conn, ""))
        if kind is FrameKind.CONNECT:
            urls[conn] = url
        if kind is FrameKind.HEADER:
            yield RecordedFrame(kind, 0, line.rstrip("\n"), "", conn)
            continue
        if "ts_ns" in record:
            ts_ns = int(record["ts_ns"])
        else:
            ts = record.get("ts", 0)
            ts_ns = seconds_to_ns(repr(ts)) if isinstance(ts, float) else int(ts) * 10**9
        data = record.get("data", "")
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        yield RecordedFrame(kind, ts_ns, payload, url, conn)


def _read_hftbacktest(path: Path) -> Iterator[RecordedFrame]:
    scale = 1_000 if path.name.endswith(".dat.gz") else 1
    for number, line in enumerate(_lines(path), 1):
        line = line.rstrip("\n")
        if not line:
            continue
        ts_text, _, data = line.partition(" ")
        if not ts_text.isdigit() or not data:
            raise DataValidationError(path, "expected '<timestamp> <json>'", row=number)
        kind = FrameKind.REST if data.startswith('{"lastUpdateId"') else FrameKind.RECV
        yield RecordedFrame(kind, int(ts_text) * scale, data, "", path.name)
