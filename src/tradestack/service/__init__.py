"""Service: REST API, dashboard, Prometheus metrics (issue: paper and live trading)."""
