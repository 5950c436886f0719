"""The multi-layer pipeline (features → alphas → ensemble → sizing → risk) as one strategy."""
