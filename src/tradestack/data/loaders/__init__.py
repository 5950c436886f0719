"""Loaders that turn vendor market-data files into catalog frames."""
