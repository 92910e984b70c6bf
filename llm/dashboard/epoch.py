"""`floor((unix_time(column) + offset) / seconds)` in SQL: minute buckets of a raw window.

Django's Trunc* cannot express "15-minute" buckets, and on SQLite it calls back into
Python for every row. Integer division of the Unix time does it in SQL; the offset
shifts the buckets onto local quarter hours in zones such as Asia/Kathmandu (+5:45).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, IntegerField
from django.db.models.sql.compiler import SQLCompiler


class EpochBucket(Func):
    output_field = IntegerField()

    def __init__(self, expression: Any, seconds: int, offset: int = 0) -> None:
        super().__init__(expression)
        self.seconds = int(seconds)
        self.offset = int(offset)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        # strftime('%s') is native C in SQLite; integer / integer floors for positive times.
        return f"((CAST(strftime('%%s', {sql}) AS INTEGER) + {self.offset}) / {self.seconds})", params

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(FLOOR((EXTRACT(EPOCH FROM {sql}) + {self.offset}) / {self.seconds}) AS BIGINT)", params
