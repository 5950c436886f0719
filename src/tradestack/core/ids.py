"""Identifiers: instruments and deterministic client order ids."""

from __future__ import annotations

import hashlib

import msgspec


class InstrumentId(msgspec.Struct, frozen=True, order=True):
    """Names one tradable instrument on one venue, e.g. ``InstrumentId("BTC/USDT", "binance")``."""

    symbol: str
    venue: str = "sim"

    def __str__(self) -> str:
        return f"{self.symbol}@{self.venue}"

    @classmethod
    def parse(cls, text: str) -> InstrumentId:
        """Parse ``"SYMBOL@venue"`` (venue defaults to ``sim``)."""
        symbol, sep, venue = text.strip().partition("@")
        if not symbol or (sep and not venue):
            raise ValueError(f"instrument id {text!r} must look like 'SYMBOL' or 'SYMBOL@venue'")
        return cls(symbol, venue if sep else "sim")


def client_order_id(strategy: str, instrument: InstrumentId, intent: str, sequence: int) -> str:
    """Deterministic client order id from (strategy, instrument, intent, sequence).

    A resend after a crash yields the same id, so a venue recognises it as the same order.
    """
    raw = f"{strategy}|{instrument}|{intent}|{sequence}".encode()
    return f"ts-{sequence}-{hashlib.blake2b(raw, digest_size=8).hexdigest()}"
