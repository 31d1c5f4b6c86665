"""Differential runs: one legacy request sent to Flask and to v2 through the adapter, each
on the same database state, and the two answers compared as a legacy client reads them.

The state is the whole content of the shop's tables (a few dozen rows in the fuzz
database), read before and put back before each side runs, id sequences included: a row
created on one side gets the id it gets on the other. The comparison is kept small here
on purpose, so that the gateway's own comparison (noise rules per route) can replace it:

- the status, and the `Location` and `ETag` headers;
- the body as JSON values, timestamps and tokens as noise (the two sides run a few
  milliseconds apart); an error's `code` and the names its `fields` give, not the
  wording (marshmallow's and Pydantic's messages are not the contract);
- the rows each side left, timestamps aside, and for a rejected request (4xx) no row
  changed at all (a login failure is recorded on purpose: the throttle counts it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text

from shop_core.models import Base

# Columns whose values are the clock's: never equal between two runs.
CLOCK_COLUMNS = frozenset({"created_at", "updated_at", "failed_at"})
# Body keys that are noise: the clock, and a token signed at a different second.
NOISE_KEYS = frozenset({"created_at", "updated_at", "access_token"})
# Rows a rejected request writes by design: a wrong password is counted by the throttle.
RECORDED_ON_REJECTION = frozenset({"login_failures"})
HEADERS = ("location", "etag")

Rows = dict[str, tuple[tuple[Any, ...], ...]]


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def read_rows(engine: Engine) -> Rows:
    """Every row of every shop table, ordered by primary key."""
    with engine.connect() as conn:
        return {
            table.name: tuple(
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))
            )
            for table in _tables()
        }


def restore_rows(engine: Engine, rows: Rows) -> None:
    """Put `rows` back as the tables' whole content, and the id sequences where they were."""
    with engine.begin() as conn:
        for table in reversed(_tables()):
            conn.execute(delete(table))
        for table in _tables():
            if rows[table.name]:
                names = [column.name for column in table.columns]
                conn.execute(
                    insert(table), [dict(zip(names, row, strict=True)) for row in rows[table.name]]
                )
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)


def _reset_sequences(conn: Connection) -> None:
    # PostgreSQL does not give sequence numbers back; SQLite numbers from the largest rowid.
    for table in _tables():
        largest = conn.scalar(select(func.max(table.c.id)))
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :next, false)"),
            {"table": table.name, "next": (largest or 0) + 1},
        )


def _without_clock(rows: Rows) -> Rows:
    cleaned: Rows = {}
    for table in _tables():
        keep = [i for i, column in enumerate(table.columns) if column.name not in CLOCK_COLUMNS]
        cleaned[table.name] = tuple(tuple(row[i] for i in keep) for row in rows[table.name])
    return cleaned


@dataclass(frozen=True)
class Request:
    """A legacy request as drawn: under the legacy prefix, with a raw body."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def describe(self) -> str:
        query = f"?{self.query}" if self.query else ""
        body = "" if self.body is None else f" {self.body[:300]!r}"
        return f"{self.method} {self.path}{query} {dict(self.headers)}{body}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str | None]
    body: Any  # the JSON value, or the bytes when the body is no JSON
    content_type: str
    rows: Rows


def send(http: requests.Session, base_url: str, request: Request, engine: Engine) -> Answer:
    url = base_url + request.path + (f"?{request.query}" if request.query else "")
    answer = http.request(
        request.method, url, headers=dict(request.headers), data=request.body, timeout=30
    )
    body: Any = answer.content
    content_type = answer.headers.get("content-type", "")
    if "json" in content_type:
        try:
            body = json.loads(answer.content)
        except ValueError:
            body = answer.content
    return Answer(
        status=answer.status_code,
        headers={name: answer.headers.get(name) for name in HEADERS},
        body=body,
        content_type=content_type.split(";")[0].strip(),
        rows=read_rows(engine),
    )


def _field_names(fields: Any) -> Any:
    """The names an error's `fields` give, nested as they are, without the messages."""
    if isinstance(fields, dict):
        return {str(name): _field_names(inner) for name, inner in fields.items()}
    return None


def comparable(body: Any, status: int) -> Any:
    """The body as the comparison sees it: noise out, errors reduced to code and fields."""
    if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return {"error": {"code": error.get("code"), "fields": _field_names(error.get("fields"))}}
    return _without_noise(body)


def _without_noise(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                "<noise>" if key in NOISE_KEYS and isinstance(inner, str) else _without_noise(inner)
            )
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_without_noise(inner) for inner in value]
    return value


def _pointers(left: Any, right: Any, at: str = "") -> Iterator[str]:
    """JSON pointers where `left` and `right` differ (the first level that differs)."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            yield from _pointers(
                left.get(key, "<absent>"), right.get(key, "<absent>"), f"{at}/{key}"
            )
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (one, other) in enumerate(zip(left, right, strict=True)):
            yield from _pointers(one, other, f"{at}/{index}")
    elif left != right or type(left) is not type(right):
        yield f"{at or '/'}: legacy {left!r:.200} != v2 {right!r:.200}"


def differences(before: Rows, legacy: Answer, v2: Answer) -> list[str]:
    """What a legacy client (or the database) could tell apart; empty when nothing."""
    found = [
        f"{side} answered {answer.status}"
        for side, answer in (("legacy", legacy), ("v2", v2))
        if answer.status >= 500
    ]
    if legacy.status != v2.status:
        found.append(f"status: legacy {legacy.status} != v2 {v2.status}")
    if legacy.content_type != v2.content_type:
        found.append(f"content-type: legacy {legacy.content_type} != v2 {v2.content_type}")
    for name in HEADERS:
        # A tag is the hash of the whole representation, clock included: compared when
        # the two bodies are the same values.
        if name == "etag" and legacy.body != v2.body:
            continue
        if legacy.headers[name] != v2.headers[name]:
            found.append(f"header {name}: legacy {legacy.headers[name]} != v2 {v2.headers[name]}")
    found.extend(
        f"body {pointer}"
        for pointer in _pointers(
            comparable(legacy.body, legacy.status), comparable(v2.body, v2.status)
        )
    )
    kept_legacy, kept_v2 = _without_clock(legacy.rows), _without_clock(v2.rows)
    for table in kept_legacy:
        if kept_legacy[table] != kept_v2[table]:
            found.append(f"rows of {table} differ after the request")
    for side, answer in (("legacy", legacy), ("v2", v2)):
        if 400 <= answer.status < 500:
            changed = [
                table
                for table in answer.rows
                if table not in RECORDED_ON_REJECTION and answer.rows[table] != before[table]
            ]
            if changed:
                found.append(f"{side} rejected it ({answer.status}) but changed {changed}")
    return found
