"""What a sweep writes: every variant as Parquet and CSV, and an HTML page with the metric over
the first two swept keys as a heatmap (or a line over one key) and the sorted table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from tradestack.analytics.report import html_table, write_atomic


def write_results(rows: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """``sweep.parquet`` and ``sweep.csv`` with one row per variant, in run order."""
    import polars as pl

    out_dir.mkdir(parents=True, exist_ok=True)
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    frame = pl.DataFrame(public, infer_schema_length=None)
    parquet, csv = out_dir / "sweep.parquet", out_dir / "sweep.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv)
    return {"sweep.parquet": parquet, "sweep.csv": csv}


def write_sweep_report(
    path: Path,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    metric: str,
    title: str,
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """One self-contained HTML page (plotly.js inline)."""
    import plotly.io as pio

    figure = _figure(rows, keys, metric)
    chart = "" if figure is None else pio.to_html(figure, full_html=False, include_plotlyjs=True)
    rest = (
        [c for c in rows[0] if c not in (*keys, metric) and not c.startswith("_")] if rows else []
    )
    columns = [*keys, metric, *rest]
    table = html_table(columns, [[_cell(r.get(c)) for c in columns] for r in rows], "sweep")
    html = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title></head><body>",
            f"<h1>{escape(title)}</h1><p>{len(rows)} variants, sorted by {escape(metric)}</p>",
            chart,
            *(f"<h2>{escape(head)}</h2>{body}" for head, body in sections),
            "<h2>Variants</h2>",
            table,
            "</body></html>",
        ]
    )
    write_atomic(path, html)
    return path


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _figure(rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str) -> Any:
    import plotly.graph_objects as go

    numeric = [k for k in keys if all(isinstance(r.get(k), int | float) for r in rows)]
    good = [r for r in rows if isinstance(r.get(metric), int | float)]
    if not numeric or not good:
        return None
    if len(numeric) == 1:
        key = numeric[0]
        pts = sorted((r[key], r[metric]) for r in good)
        fig = go.Figure(
            go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers")
        )
        fig.update_layout(title=f"{metric} by {key}", xaxis_title=key, yaxis_title=metric)
        return fig
    kx, ky = numeric[0], numeric[1]
    xs = sorted({r[kx] for r in good})
    ys = sorted({r[ky] for r in good})
    cells: dict[tuple[Any, Any], list[float]] = {}
    for r in good:  # other swept keys: the mean over them
        cells.setdefault((r[kx], r[ky]), []).append(float(r[metric]))
    z = [[_mean(cells.get((x, y))) for x in xs] for y in ys]
    fig = go.Figure(
        go.Heatmap(z=z, x=xs, y=ys, colorscale="RdYlGn", colorbar={"title": {"text": metric}})
    )
    fig.update_layout(title=f"{metric} over {kx} × {ky}", xaxis_title=kx, yaxis_title=ky)
    return fig


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
