"""Research: labels, walk-forward, purged CV, model registry (issue: research speed)."""
