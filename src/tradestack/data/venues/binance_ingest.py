"""Bulk ingest of Binance diff-depth frames: raw JSON text → catalog ``book`` rows, columnar.

The per-message path (:class:`~tradestack.data.venues.binance.BinanceBookSync`) builds Python
objects per level, which is right for a live book but caps a bulk import of recorded traffic.
Here frames are only collected on :meth:`add`; :meth:`to_frame` scans the whole batch with the
numba scanner (:mod:`.binance_scan`) straight into numpy columns. Frames the scanner does not
accept go through msgspec instead; frames neither accepts are counted in ``malformed``. Rows
are the diffs as sent (``is_snapshot`` False, ``batch_end`` on each message's last level);
sequencing is checked by the book sync or the validation gates, not here.
"""

from __future__ import annotations

import msgspec
import numpy as np
import polars as pl

from tradestack.data.venues.binance_scan import KEYS, POW10, scan_depth

MS = 1_000_000


class _Depth(msgspec.Struct, gc=False):
    E: int
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    T: int = 0


class _Frame(msgspec.Struct, gc=False):
    data: _Depth


# strict=False lets msgspec parse the venue's decimal strings straight into floats.
_decoders = (msgspec.json.Decoder(_Frame, strict=False), msgspec.json.Decoder(_Depth, strict=False))


def _decode(text: bytes) -> _Depth | None:
    for decoder in _decoders:
        try:
            decoded = decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        return decoded.data if isinstance(decoded, _Frame) else decoded
    return None


class BinanceDepthIngest:
    """Collects depth frames and turns each batch into a ``book`` frame (catalog schema)."""

    def __init__(self) -> None:
        self.malformed = 0
        self.messages = 0
        self._frames: list[bytes] = []
        self._ts_recv: list[int] = []

    def add(self, text: str | bytes, ts_recv_ns: int) -> None:
        """Queue one frame (combined-stream wrapper or bare payload)."""
        self._frames.append(text.encode() if isinstance(text, str) else text)
        self._ts_recv.append(ts_recv_ns)

    def to_frame(self) -> pl.DataFrame:
        """Rows of the frames queued since the last call, in the catalog ``book`` schema."""
        frames, ts_recv = self._frames, np.array(self._ts_recv, dtype=np.int64)
        self._frames, self._ts_recv = [], []
        lengths = np.fromiter(map(len, frames), dtype=np.int64, count=len(frames))
        ends = np.cumsum(lengths + 1) - 1
        starts = ends - lengths
        buf = np.frombuffer(b"\n".join(frames), dtype=np.uint8)
        header, prices, sizes, level_start = scan_depth(buf, starts, ends, KEYS, POW10)
        rejected = np.flatnonzero(header[:, 0] == 0)
        for row in rejected:
            prices, sizes = self._fallback(
                frames[row], int(row), header, level_start, prices, sizes
            )
        ok = header[:, 0] == 1
        self.messages += int(ok.sum())
        header, level_start, ts_recv = header[ok], level_start[ok], ts_recv[ok]
        n_bids = header[:, 5]
        counts = n_bids + header[:, 6]
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(counts)), counts)
        offset = np.arange(total) - (np.cumsum(counts) - counts)[rows]
        # Scanned levels already lie in message order; only fallback frames live elsewhere.
        take = slice(0, total) if not len(rejected) else level_start[rows] + offset
        batch_end = np.zeros(total, dtype=bool)
        batch_end[(np.cumsum(counts) - 1)[counts > 0]] = True
        exchange_ms = np.where(header[:, 2] > 0, header[:, 2], header[:, 1])
        return pl.DataFrame(
            {
                "ts_event_ns": (exchange_ms * MS)[rows],
                "ts_recv_ns": ts_recv[rows],
                "side": offset < n_bids[rows],
                "price": prices[take],
                "size": sizes[take],
                "sequence": header[rows, 4],
                "is_snapshot": np.zeros(total, dtype=bool),
                "batch_end": batch_end,
            }
        ).with_columns(side=pl.when(pl.col("side")).then(pl.lit("bid")).otherwise(pl.lit("ask")))

    def _fallback(
        self,
        frame: bytes,
        row: int,
        header: np.ndarray,
        level_start: np.ndarray,
        prices: np.ndarray,
        sizes: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        depth = _decode(frame)
        if depth is None:
            self.malformed += 1
            return prices, sizes
        levels = np.array([*depth.b, *depth.a], dtype=np.float64).reshape(-1, 2)
        header[row] = (1, depth.E, depth.T, depth.U, depth.u, len(depth.b), len(depth.a))
        level_start[row] = len(prices)
        return np.concatenate([prices, levels[:, 0]]), np.concatenate([sizes, levels[:, 1]])
