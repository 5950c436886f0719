"""Performance analytics: metrics of an equity curve and its trades, and the HTML report.

``write_report`` is imported lazily so that importing this package does not import plotly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradestack.analytics.metrics import PerformanceMetrics, compute_metrics

if TYPE_CHECKING:
    from tradestack.analytics.report import write_report

__all__ = ["PerformanceMetrics", "compute_metrics", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from tradestack.analytics.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
