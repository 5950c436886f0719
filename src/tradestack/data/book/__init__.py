"""Local L2 order books and the per-venue rules that keep them in sync with the exchange."""
