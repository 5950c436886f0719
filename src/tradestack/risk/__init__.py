"""Risk: pre-trade checks, limits, drawdown breaker, kill switch (issue: multi-layer pipeline)."""
