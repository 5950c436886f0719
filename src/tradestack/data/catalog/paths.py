"""Where catalog parts live: partition folders, symbol encoding and time-range pruning.

Layout: ``TABLE/venue=<venue>/kind=<kind>/symbol=<encoded symbol>/date=YYYY-MM-DD/part-*.parquet``
where ``TABLE`` is the catalog root (the dataset) or one of its ``_quarantine`` / ``_issues``
tables. Symbols keep ``[A-Za-z0-9._-]`` and write every other byte of their UTF-8 form as
``~XX`` (upper-case hex), so ``BTC/USDT:USDT`` is stored as ``BTC~2FUSDT~3AUSDT``: reversible,
safe on every filesystem and free of ``%`` and ``=``, which hive readers treat specially.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAY_NS = 86_400 * 10**9
PART_GLOB = "part-*.parquet"
_EPOCH = date(1970, 1, 1)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_ENCODED = re.compile(r"(?:[A-Za-z0-9._-]|~[0-9A-F]{2})+")
_VENUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

TimeLike = int | datetime | date | str
"""A time bound: int ns since the epoch, a datetime (naive = UTC), a date, or ISO text."""


def encode_symbol(symbol: str) -> str:
    """The partition-folder form of ``symbol`` (see the module docstring)."""
    if not symbol:
        raise ValueError("symbol must not be empty")
    return "".join(chr(b) if b in _SAFE else f"~{b:02X}" for b in symbol.encode())


def decode_symbol(encoded: str) -> str:
    """Inverse of :func:`encode_symbol`; raises ``ValueError`` for text it never produces."""
    if not _ENCODED.fullmatch(encoded):
        raise ValueError(f"{encoded!r} is not an encoded symbol")
    parts = encoded.split("~")
    raw = bytearray(parts[0].encode())
    for part in parts[1:]:
        raw.append(int(part[:2], 16))
        raw += part[2:].encode()
    return raw.decode()


def check_venue(venue: str) -> str:
    """``venue`` when it is a usable folder name (a ccxt id or vendor name), else ``ValueError``."""
    if not _VENUE.fullmatch(venue):
        raise ValueError(
            f"venue {venue!r} must be letters, digits, '.', '_' or '-' (a ccxt id such as "
            "'binance' or a vendor name)"
        )
    return venue


def partition_dir(table: Path, venue: str, kind: str, symbol: str) -> Path:
    """The folder holding every date of one (venue, kind, symbol)."""
    return table / f"venue={venue}" / f"kind={kind}" / f"symbol={encode_symbol(symbol)}"


def date_of_day(day: int) -> str:
    """``YYYY-MM-DD`` of a UTC day number (days since 1970-01-01)."""
    return (_EPOCH + timedelta(days=day)).isoformat()


def to_ns(value: TimeLike) -> int:
    """Nanoseconds since the epoch (UTC) of a time bound."""
    if isinstance(value, bool):
        raise TypeError("a time bound must be int ns, datetime, date or ISO text, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().removesuffix("Z")
        value = (
            datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        )
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return (value - _EPOCH).days * DAY_NS


def day_range(start_ns: int | None, end_ns: int | None) -> tuple[str | None, str | None]:
    """First and last ``date=`` folder that can hold ``start_ns <= ts < end_ns``."""
    first = date_of_day(start_ns // DAY_NS) if start_ns is not None else None
    last = date_of_day((end_ns - 1) // DAY_NS) if end_ns is not None else None
    return first, last


def list_scopes(table: Path, kind: str | None = None) -> Iterator[tuple[str, str, str, Path]]:
    """(venue, kind, symbol, folder) of every stored series, from folder names only."""
    if not table.is_dir():
        return
    for venue_dir in sorted(table.glob("venue=*")):
        for kind_dir in sorted(venue_dir.glob(f"kind={kind}" if kind else "kind=*")):
            for symbol_dir in sorted(kind_dir.glob("symbol=*")):
                yield (
                    venue_dir.name.removeprefix("venue="),
                    kind_dir.name.removeprefix("kind="),
                    decode_symbol(symbol_dir.name.removeprefix("symbol=")),
                    symbol_dir,
                )


def list_parts(folder: Path, first_day: str | None, last_day: str | None) -> list[Path]:
    """Part files of one series whose ``date=`` folder lies in [first_day, last_day].

    Only this series' folder is listed, and only the kept dates' folders are opened, so other
    symbols, venues and days are never touched (ISO dates compare correctly as text).
    """
    if not folder.is_dir():
        return []
    parts: list[Path] = []
    for day_dir in sorted(folder.glob("date=*")):
        day = day_dir.name.removeprefix("date=")
        if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
            parts += sorted(day_dir.glob(PART_GLOB))
    return parts
