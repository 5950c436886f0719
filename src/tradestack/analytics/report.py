"""Self-contained HTML performance report (plotly.js embedded inline; opens offline)."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradestack.analytics.metrics import PerformanceMetrics, drawdown_series, monthly_returns
from tradestack.portfolio.trades import TradeRecord

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_PERCENT_FIELDS = frozenset(
    {
        "total_return",
        "cagr",
        "volatility",
        "max_drawdown",
        "win_rate",
        "avg_trade_return",
        "best_trade_return",
        "worst_trade_return",
        "exposure_fraction",
    }
)
_MONEY_FIELDS = frozenset({"starting_equity", "final_equity", "avg_trade_pnl", "total_fees"})

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.pos { color: #1a7f37; } .neg { color: #cf222e; }
"""


def _iso(ts_ns: int) -> str:
    seconds, nanos = divmod(int(ts_ns), 10**9)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos // 1000:06d}Z" if nanos else f"{stamp}Z"


def _fmt_metric(name: str, value: float | int, currency: str) -> str:
    if name in ("start_ns", "end_ns"):
        return _iso(int(value))
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if name == "max_drawdown_duration_days":
        return f"{value:,.1f}"
    if name in _PERCENT_FIELDS:
        return f"{value:.2%}"
    if name in _MONEY_FIELDS:
        return f"{value:,.2f} {currency}"
    return f"{value:,.4g}" if abs(value) >= 1e4 else f"{value:.4f}"


def _metrics_table(metrics: PerformanceMetrics, currency: str) -> str:
    rows = []
    for name in metrics.__struct_fields__:
        label = name.replace("_ns", "").replace("_", " ")
        text = _fmt_metric(name, getattr(metrics, name), currency)
        rows.append(f'<tr><th class="l">{escape(label)}</th><td>{escape(text)}</td></tr>')
    return '<table id="metrics">' + "".join(rows) + "</table>"


def html_table(columns: Sequence[str], rows: Sequence[Sequence[object]], table_id: str) -> str:
    """A plain table; every cell is escaped. The first column is left-aligned."""
    head = "".join(
        f'<th class="l">{escape(c)}</th>' if i == 0 else f"<th>{escape(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="l">{escape(str(v))}</td>' if i == 0 else f"<td>{escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table id="{escape(table_id)}"><tr>{head}</tr>{body}</table>'


def _trades_table(trades: Sequence[TradeRecord], currency: str) -> str:
    cur = escape(currency)
    head = (
        '<tr><th class="l">instrument</th><th class="l">side</th><th>qty</th>'
        '<th class="l">entry time (UTC)</th><th>entry price</th>'
        '<th class="l">exit time (UTC)</th><th>exit price</th>'
        f"<th>pnl ({cur})</th><th>fees ({cur})</th><th>return</th></tr>"
    )
    rows = []
    for t in trades:
        pnl = t.pnl
        css = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
        cells = (
            f'<td class="l">{escape(str(t.instrument_id))}</td>',
            f'<td class="l">{escape(t.side)}</td>',
            f"<td>{escape(str(t.qty))}</td>",
            f'<td class="l">{_iso(t.entry_ts_ns)}</td>',
            f"<td>{escape(str(t.entry_price))}</td>",
            f'<td class="l">{_iso(t.exit_ts_ns)}</td>',
            f"<td>{escape(str(t.exit_price))}</td>",
            f'<td class="{css}">{escape(f"{pnl:,.2f}")}</td>',
            f"<td>{escape(f'{t.fees:,.2f}')}</td>",
            f"<td>{t.return_fraction:.2%}</td>",
        )
        rows.append('<tr class="trade">' + "".join(cells) + "</tr>")
    body = "".join(rows) if rows else '<tr><td class="l" colspan="10">no closed trades</td></tr>'
    return f'<table id="trades">{head}{body}</table>'


def _figures(
    ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], currency: str
) -> list[Any]:
    import plotly.graph_objects as go

    times = ts_ns.astype("datetime64[ns]").astype("datetime64[ms]")
    layout: dict[str, Any] = {"height": 380, "margin": {"l": 60, "r": 20, "t": 40, "b": 40}}
    equity_fig = go.Figure(go.Scatter(x=times, y=equity, mode="lines", name="equity"))
    equity_fig.update_layout(title="Equity", yaxis_title=currency, **layout)
    dd = drawdown_series(equity) * 100.0
    dd_fig = go.Figure(
        go.Scatter(
            x=times, y=dd, mode="lines", fill="tozeroy", name="drawdown", line_color="#cf222e"
        )
    )
    dd_fig.update_layout(title="Drawdown", yaxis_title="% below peak", **layout)

    monthly = monthly_returns(ts_ns, equity)
    years = sorted({year for year, _, _ in monthly})
    grid: list[list[float | None]] = [[None] * 12 for _ in years]
    row_of = {year: i for i, year in enumerate(years)}
    for year, month, ret in monthly:
        grid[row_of[year]][month - 1] = ret * 100.0 if math.isfinite(ret) else None
    text = [["" if v is None else f"{v:.1f}%" for v in row] for row in grid]
    heat_fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(_MONTHS),
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0.0,
            colorbar={"title": {"text": "%"}},
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
        )
    )
    heat_fig.update_layout(
        title="Monthly returns",
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(240, 60 + 28 * len(years)),
        margin=layout["margin"],
    )
    return [equity_fig, dd_fig, heat_fig]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling and move it into place (never a partial file)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp creates 0600; a report is meant to be shared
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    ts_ns: npt.ArrayLike,
    equity: npt.ArrayLike,
    trades: Sequence[TradeRecord],
    metrics: PerformanceMetrics,
    currency: str = "USD",
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write one self-contained HTML report and return its path.

    Contains the equity curve, the drawdown chart, a years × months heatmap of monthly returns,
    the metrics table, the closed-trades table and any extra ``sections`` (heading, HTML built
    with :func:`html_table`). plotly.js is embedded inline, so the file
    opens without network access. The file is written to a temporary sibling and moved into
    place with :func:`os.replace`: a failure never leaves a partial report at ``path``.
    """
    import plotly.io as pio

    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != eq.shape:
        raise ValueError("ts_ns and equity must be 1-D arrays of the same length")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    charts = [
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=(i == 0),
            div_id=f"chart-{name}",
            config={"responsive": True},
        )
        for i, (name, fig) in enumerate(
            zip(("equity", "drawdown", "monthly"), _figures(ts, eq, currency), strict=True)
        )
    ]
    safe_title = escape(title)
    period = f"{_iso(int(ts[0]))} → {_iso(int(ts[-1]))}" if ts.size else "no bars"
    html = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{safe_title}</title><style>{_CSS}</style></head><body>",
            f"<h1>{safe_title}</h1><p>{escape(period)} · {len(trades)} closed trades</p>",
            *charts,
            "<h2>Metrics</h2>",
            _metrics_table(metrics, currency),
            "<h2>Trades</h2>",
            _trades_table(trades, currency),
            *(f"<h2>{escape(head)}</h2>{body}" for head, body in sections),
            "</body></html>",
        ]
    )
    write_atomic(out, html)
    return out
