"""Features: technical indicators (batch and incremental) and microstructure features."""
