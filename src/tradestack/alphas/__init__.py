"""Alpha models and the ensemble (issue: multi-layer pipeline)."""
