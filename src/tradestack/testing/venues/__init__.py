"""Fake venue protocols, one module per exchange, each replaying recorded real traffic."""

from __future__ import annotations

from pathlib import Path

from tradestack.testing.fake_venue import FakeVenue

VENUES = ("binance", "binanceusdm", "coinbase", "kraken", "kucoin")


def make_fake_venue(
    venue: str, recordings: list[Path], *, metadata: Path | None, speed: float | None = None
) -> FakeVenue:
    """The fake venue for a ccxt id, replaying ``recordings``.

    ``metadata`` is the recorded market list the client loads first: Binance ``exchangeInfo``,
    Kraken ``AssetPairs``, KuCoin ``symbols`` (Coinbase's products body is inside its recording).
    """
    if venue not in VENUES:
        raise ValueError(f"no fake venue for {venue!r}; available: {', '.join(VENUES)}")
    if venue != "coinbase" and metadata is None:
        raise ValueError(f"the {venue} fake venue needs the recorded market list (--metadata)")
    if venue in ("binance", "binanceusdm"):
        from tradestack.testing.venues.binance import BinanceFakeVenue

        return BinanceFakeVenue(
            recordings, futures=venue == "binanceusdm", exchange_info=metadata, speed=speed
        )
    if venue == "coinbase":
        from tradestack.testing.venues.coinbase import CoinbaseFakeVenue

        return CoinbaseFakeVenue(recordings[0], speed=speed)
    assert metadata is not None
    if venue == "kraken":
        from tradestack.testing.venues.kraken import KrakenFakeVenue

        return KrakenFakeVenue(recordings, asset_pairs=metadata, speed=speed)
    from tradestack.testing.venues.kucoin import KucoinFakeVenue

    return KucoinFakeVenue(recordings, symbols_file=metadata, speed=speed)
