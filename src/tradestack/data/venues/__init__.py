"""Venue protocols: book sync rules and message normalizers, one module per exchange."""
