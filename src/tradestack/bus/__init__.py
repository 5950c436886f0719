"""The message bus: market data and signals between processes (Redis Streams).

See :mod:`tradestack.bus.redis_streams`.
"""

from tradestack.bus.redis_streams import (
    DEFAULT_REDIS_URL,
    SCHEMA_VERSION,
    BusDecodeError,
    BusMessage,
    ConsumerStats,
    Delivery,
    GroupBacklog,
    Signal,
    StreamConsumer,
    StreamPublisher,
    SyncStreamPublisher,
    connect,
    decode_entry,
    encode_message,
    redact_url,
    redis_url,
    stream_backlog,
)

__all__ = [
    "DEFAULT_REDIS_URL",
    "SCHEMA_VERSION",
    "BusDecodeError",
    "BusMessage",
    "ConsumerStats",
    "Delivery",
    "GroupBacklog",
    "Signal",
    "StreamConsumer",
    "StreamPublisher",
    "SyncStreamPublisher",
    "connect",
    "decode_entry",
    "encode_message",
    "redact_url",
    "redis_url",
    "stream_backlog",
]
