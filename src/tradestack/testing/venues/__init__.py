"""Fake venue protocols, one module per exchange, each replaying recorded real traffic."""
