"""Point a ccxt exchange at another server (a local fake venue, a proxy) by rewriting its URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def rewrite_url(url: str, base_url: str) -> str:
    """``wss://stream.binance.com:9443/ws`` → ``ws://127.0.0.1:PORT/stream.binance.com:9443/ws``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        return url
    base = urlsplit(base_url)
    scheme = "ws" if parts.scheme in ("ws", "wss") else "http"
    # a path-less WebSocket URL (wss://ws.kraken.com) is dialled as is: it needs the "/" the
    # server routes on (REST bases are prefixes, ccxt appends "/path" to them)
    path = parts.path or ("/" if scheme == "ws" else "")
    rewritten = f"{scheme}://{base.netloc}/{parts.netloc}{path}"
    return f"{rewritten}?{parts.query}" if parts.query else rewritten


def _rewrite(node: Any, base_url: str) -> Any:
    if isinstance(node, str):
        return rewrite_url(node, base_url)
    if isinstance(node, dict):
        return {key: _rewrite(value, base_url) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite(value, base_url) for value in node]
    return node


def point_at(exchange: Any, base_url: str) -> Any:
    """Rewrite every API URL of a ccxt exchange (REST and WebSocket) to go through ``base_url``.

    Only ``exchange.urls['api']`` changes; the client code, request signing, parsing and book
    handling are ccxt's own.
    """
    exchange.urls["api"] = _rewrite(exchange.urls["api"], base_url)
    return exchange
