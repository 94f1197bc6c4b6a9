"""The one module that talks to InfluxDB: line protocol writes, InfluxQL queries, schema."""

from ioc.store.client import Series, Store, duration_seconds
from ioc.store.influxql import qualified, quote_ident, quote_literal
from ioc.store.lineprotocol import Point, encode_point, encode_points, time_ns

__all__ = [
    "Point",
    "Series",
    "Store",
    "duration_seconds",
    "encode_point",
    "encode_points",
    "qualified",
    "quote_ident",
    "quote_literal",
    "time_ns",
]
