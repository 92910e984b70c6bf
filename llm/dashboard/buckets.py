"""Time buckets computed by the database, for charts over any window.

Django's Trunc* cannot express "5-minute" or "12-hour" buckets, and on SQLite it calls
back into Python for every row. Integer division of the Unix time does both in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, IntegerField
from django.db.models.sql.compiler import SQLCompiler

# Bucket widths a chart may use, shortest first; the first one giving at most
# MAX_BUCKETS buckets over the window wins (1 h -> 1 min, 24 h -> 30 min, 30 d -> 12 h).
WIDTHS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)
MAX_BUCKETS = 60


class EpochBucket(Func):
    """`floor(unix_time(expression) / seconds)`: the bucket number of a datetime column."""

    output_field = IntegerField()

    def __init__(self, expression: Any, seconds: int) -> None:
        super().__init__(expression)
        self.seconds = int(seconds)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        # strftime('%s') is native C in SQLite; integer / integer floors for positive times.
        return f"(CAST(strftime('%%s', {sql}) AS INTEGER) / {self.seconds})", params

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {sql}) / {self.seconds}) AS BIGINT)", params


@dataclass(frozen=True, slots=True)
class Buckets:
    """Fixed-width buckets covering a window, aligned on multiples of the width.

    Alignment makes a bucket's content independent of the window asked for, so a
    bucket that is over can be computed once and kept (see llm.bucketcache).
    """

    start: datetime  # the window asked for; the first bucket may begin a little before
    end: datetime
    seconds: int

    @classmethod
    def for_window(cls, start: datetime, end: datetime) -> Buckets:
        span = (end - start).total_seconds()
        seconds = next((w for w in WIDTHS if span / w <= MAX_BUCKETS), WIDTHS[-1])
        return cls(start, end, seconds)

    @property
    def first(self) -> int:
        return int(self.start.timestamp()) // self.seconds

    @property
    def last(self) -> int:
        return (int(self.end.timestamp()) - 1) // self.seconds

    def numbers(self) -> range:
        return range(self.first, self.last + 1)

    def number_of(self, moment: datetime) -> int:
        return int(moment.timestamp()) // self.seconds

    def start_of(self, number: int) -> datetime:
        return datetime.fromtimestamp(number * self.seconds, tz=UTC)

    @property
    def width(self) -> timedelta:
        return timedelta(seconds=self.seconds)
