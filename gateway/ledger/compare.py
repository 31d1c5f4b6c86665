"""Two answers to one request, compared as the client reads them.

The client reads a status, a few headers and a body; it never reads bytes for their own
sake. So the comparison is of values: JSON bodies are parsed and compared as JSON values
(`"\\u00e9"` and `"é"` are the same string, key order is irrelevant, `1` and `1.0` are the
same number, `true` is not `1`); headers are compared only where a route chooses them
(`content-type` by its media type, the others as text); a body that is not JSON on both
sides is compared as bytes.

Noise rules (`ShadowRules`) say where two correct answers may differ: JSON pointers to
ignore, and pointers compared loosely (timestamps or numbers within a tolerance). A pointer
segment `*` matches any key or array index: `/products/*/updated_at`. Fields the team
marks sensitive are redacted in the differences kept (`redacted`), wherever they appear.

The result is the list of differences, each with its JSON pointer (RFC 6901) and the two
values; an empty list is a match. Pure functions: the shadow runner and the differential
fuzzing both use them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

# Where in the answer a difference is: the status line, one header, or the body.
Part = Literal["status", "header", "body"]
REDACTED: Final = "[redacted]"
# A pointer segment that matches any key or index.
ANY: Final = "*"
# Enough to see what is wrong; a body that differs everywhere is not listed in full.
MAX_DIFFERENCES: Final = 20


class _Absent:
    """A value one side has and the other has not (a missing key, a shorter list)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


@dataclass(frozen=True)
class Answer:
    """An answer as sent: status, headers (lower-case names, as ASGI has them), body."""

    status: int
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass(frozen=True)
class ShadowRules:
    """A route's noise rules: where two correct answers may differ, and what is sensitive.

    - `ignore`: JSON pointers (with `*` segments) whose values are not compared, nor
      anything under them.
    - `loose`: pointer -> tolerance. Two ISO-8601 timestamps within that many seconds, or
      two numbers within that much, are equal.
    - `headers`: the response headers compared (lower case).
    - `sensitive`: field names whose values are redacted in the differences kept, at any
      depth (`email`, `password`, `token`).
    """

    ignore: tuple[str, ...] = ()
    loose: Mapping[str, float] = field(default_factory=dict)
    headers: tuple[str, ...] = ("content-type",)
    sensitive: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for pointer in (*self.ignore, *self.loose):
            if pointer and not pointer.startswith("/"):
                raise ValueError(f"not a JSON pointer: {pointer!r}")


DEFAULT_RULES: Final = ShadowRules()


@dataclass(frozen=True)
class Difference:
    """One place the two answers differ; `ABSENT` where one side has no value there."""

    part: Part
    pointer: str  # a JSON pointer in the body; the header's name; "" for the status
    primary: Any
    shadow: Any

    def as_json(self) -> dict[str, Any]:
        """As kept and shown: a value one side lacks is left out rather than made up."""
        shown: dict[str, Any] = {"part": self.part, "pointer": self.pointer}
        if self.primary is not ABSENT:
            shown["primary"] = self.primary
        if self.shadow is not ABSENT:
            shown["shadow"] = self.shadow
        return shown


@dataclass(frozen=True)
class Comparison:
    differences: tuple[Difference, ...]

    @property
    def matched(self) -> bool:
        return not self.differences


def compare(primary: Answer, shadow: Answer, rules: ShadowRules = DEFAULT_RULES) -> Comparison:
    """How `shadow` differs from `primary`, as a client reads them, under `rules`."""
    found: list[Difference] = []
    if primary.status != shadow.status:
        found.append(Difference("status", "", primary.status, shadow.status))
    for name in rules.headers:
        key = name.lower().encode("latin-1")
        ours, theirs = _header_text(primary, key), _header_text(shadow, key)
        if ours != theirs:
            found.append(Difference("header", name.lower(), ours, theirs))
    ours_json, theirs_json = _json_body(primary), _json_body(shadow)
    if ours_json is not ABSENT and theirs_json is not ABSENT:
        canonical = _canonical(ours_json)
        if primary.body == shadow.body or (
            canonical is not None and canonical == _canonical(theirs_json)
        ):
            # The same values, types included: nothing to find (the rules only forgive).
            return Comparison(tuple(found))
        for pointer, mine, other in _differences(ours_json, theirs_json, [], rules):
            found.append(Difference("body", pointer, mine, other))
            if len(found) >= MAX_DIFFERENCES:
                break
    elif primary.body != shadow.body:
        found.append(Difference("body", "", _text(primary.body), _text(shadow.body)))
    return Comparison(tuple(found[:MAX_DIFFERENCES]))


def _canonical(value: Any) -> str | None:
    """One text per JSON value, for a quick equality check in C rather than a walk in
    Python (most answers match). `true` and `1` stay apart, as do `1` and `1.0`, which the
    walk then finds equal; None (a NaN, never equal) sends the check to the walk."""
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return None


def redacted(difference: Difference, rules: ShadowRules) -> Difference:
    """`difference` with the values of sensitive fields replaced, at any depth."""
    if difference.part != "body" or not rules.sensitive:
        return difference
    segments = _segments(difference.pointer)
    # A body that was not JSON is kept as text, whose fields cannot be told apart.
    as_text = not segments and any(
        isinstance(value, str) and any(name in value for name in rules.sensitive)
        for value in (difference.primary, difference.shadow)
        if value is not ABSENT
    )
    if as_text or any(segment in rules.sensitive for segment in segments):
        primary = REDACTED if difference.primary is not ABSENT else ABSENT
        shadow = REDACTED if difference.shadow is not ABSENT else ABSENT
        return Difference(difference.part, difference.pointer, primary, shadow)
    return Difference(
        difference.part,
        difference.pointer,
        _redact(difference.primary, rules.sensitive),
        _redact(difference.shadow, rules.sensitive),
    )


def pointer_of(segments: Sequence[str | int]) -> str:
    """RFC 6901: `~` and `/` in a key escaped as `~0` and `~1`."""
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def _segments(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def _matches(pattern: str, path: Sequence[str | int]) -> bool:
    wanted = _segments(pattern)
    return len(wanted) == len(path) and all(
        w == ANY or w == str(p) for w, p in zip(wanted, path, strict=True)
    )


def _differences(
    ours: Any, theirs: Any, path: list[str | int], rules: ShadowRules
) -> Iterator[tuple[str, Any, Any]]:
    if any(_matches(pattern, path) for pattern in rules.ignore):
        return
    tolerance = next((t for p, t in rules.loose.items() if _matches(p, path)), None)
    if tolerance is not None and _close(ours, theirs, tolerance):
        return
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            yield from _differences(
                ours.get(key, ABSENT), theirs.get(key, ABSENT), [*path, key], rules
            )
    elif isinstance(ours, list) and isinstance(theirs, list):
        for index in range(max(len(ours), len(theirs))):
            mine = ours[index] if index < len(ours) else ABSENT
            other = theirs[index] if index < len(theirs) else ABSENT
            yield from _differences(mine, other, [*path, index], rules)
    elif not _same_scalar(ours, theirs):
        yield pointer_of(path), ours, theirs


def _same_scalar(ours: Any, theirs: Any) -> bool:
    # JSON's types, not Python's: true is not 1, and 1 is 1.0.
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if _is_number(ours) and _is_number(theirs):
        return bool(ours == theirs)
    return type(ours) is type(theirs) and bool(ours == theirs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _close(ours: Any, theirs: Any, tolerance: float) -> bool:
    if _is_number(ours) and _is_number(theirs):
        return math.isclose(ours, theirs, rel_tol=0, abs_tol=tolerance)
    if isinstance(ours, str) and isinstance(theirs, str):
        mine, other = _instant(ours), _instant(theirs)
        if mine is not None and other is not None:
            return abs((mine - other).total_seconds()) <= tolerance
    return False


def _instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # A naive timestamp next to an aware one cannot be subtracted: not comparable loosely.
    return parsed if parsed.tzinfo is not None else None


def _header_text(answer: Answer, name: bytes) -> str | None:
    value = answer.header(name)
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    if name == b"content-type":
        # What the client dispatches on: `application/json` and `application/json;
        # charset=utf-8` read the same.
        return text.split(";", 1)[0].strip().lower()
    return text


def _json_body(answer: Answer) -> Any:
    content_type = (answer.header(b"content-type") or b"").split(b";", 1)[0].strip().lower()
    if not (content_type.endswith(b"/json") or content_type.endswith(b"+json")):
        return ABSENT
    if not answer.body:
        # HEAD, 204, 304: nothing to read; the bytes comparison says whether both are empty.
        return ABSENT
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        return ABSENT


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _redact(value: Any, sensitive: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if key in sensitive else _redact(inner, sensitive)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, sensitive) for item in value]
    return value
