"""The comparison of two answers as a client reads them (gateway/ledger/compare.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.ledger.compare import (
    ABSENT,
    MAX_DIFFERENCES,
    REDACTED,
    Answer,
    Difference,
    ShadowRules,
    compare,
    pointer_of,
    redacted,
)

JSON = [(b"content-type", b"application/json")]


def answer(body: Any, status: int = 200, content_type: bytes = b"application/json") -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, [(b"content-type", content_type)], raw)


def test_json_is_compared_as_values_not_bytes() -> None:
    escaped = Answer(200, JSON, b'{"name": "caf\\u00e9", "id": 1, "price": "1.00"}')
    plain = Answer(200, JSON, '{"price":"1.00","id":1.0,"name":"café"}'.encode())
    assert compare(escaped, plain).matched


def test_a_changed_value_is_reported_with_its_pointer_and_both_values() -> None:
    primary = answer({"products": [{"id": 1, "stock": 5}, {"id": 2, "stock": 7}]})
    shadow = answer({"products": [{"id": 1, "stock": 5}, {"id": 2, "stock": 8}]})
    result = compare(primary, shadow)
    assert result.differences == (Difference("body", "/products/1/stock", 7, 8),)


def test_json_types_are_not_pythons() -> None:
    assert not compare(answer({"a": True}), answer({"a": 1})).matched
    assert not compare(answer({"a": "1"}), answer({"a": 1})).matched
    assert not compare(answer({"a": None}), answer({})).matched


def test_missing_keys_and_items_are_absent_on_one_side() -> None:
    result = compare(answer({"a": [1, 2], "b": 1}), answer({"a": [1], "c": 2}))
    assert [(d.pointer, d.primary, d.shadow) for d in result.differences] == [
        ("/a/1", 2, ABSENT),
        ("/b", 1, ABSENT),
        ("/c", ABSENT, 2),
    ]
    assert result.differences[0].as_json() == {"part": "body", "pointer": "/a/1", "primary": 2}


def test_status_and_chosen_headers() -> None:
    primary = Answer(200, [*JSON, (b"etag", b'"a"'), (b"x-other", b"1")], b"{}")
    shadow = Answer(404, [(b"content-type", b"application/json; charset=utf-8")], b"{}")
    result = compare(primary, shadow, ShadowRules(headers=("content-type", "ETag")))
    assert result.differences == (
        Difference("status", "", 200, 404),
        Difference("header", "etag", '"a"', None),
    )


def test_bodies_that_are_not_json_are_compared_as_bytes() -> None:
    assert compare(
        answer(b"hello", content_type=b"text/plain"), answer(b"hello", content_type=b"text/plain")
    ).matched
    result = compare(
        answer(b"hello", content_type=b"text/plain"), answer(b"hullo", content_type=b"text/plain")
    )
    assert result.differences == (Difference("body", "", "hello", "hullo"),)
    # An empty body (HEAD) on both sides is the same body.
    assert compare(Answer(200, JSON, b""), Answer(200, JSON, b"")).matched


def test_ignored_pointers_with_wildcards() -> None:
    rules = ShadowRules(ignore=("/items/*/updated_at", "/meta"))
    primary = answer({"items": [{"id": 1, "updated_at": "x"}], "meta": {"a": 1}})
    shadow = answer({"items": [{"id": 1, "updated_at": "y"}], "meta": {"a": 2}})
    assert compare(primary, shadow, rules).matched
    assert not compare(primary, shadow).matched


def test_loose_timestamps_and_numbers() -> None:
    rules = ShadowRules(loose={"/at": 2.0, "/eta": 0.5})
    primary = answer({"at": "2026-01-01T00:00:00Z", "eta": 2})
    assert compare(primary, answer({"at": "2026-01-01T00:00:01.5Z", "eta": 2.4}), rules).matched
    far = compare(primary, answer({"at": "2026-01-01T00:00:03Z", "eta": 2}), rules)
    assert [d.pointer for d in far.differences] == ["/at"]
    # Loosely compared, a value that is no timestamp must still be equal.
    assert not compare(answer({"at": "soon"}), answer({"at": "later"}), rules).matched


def test_pointers_escape_slash_and_tilde() -> None:
    assert pointer_of(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    result = compare(answer({"a/b": 1}), answer({"a/b": 2}), ShadowRules())
    assert result.differences[0].pointer == "/a~1b"
    assert compare(answer({"a/b": 1}), answer({"a/b": 2}), ShadowRules(ignore=("/a~1b",))).matched


def test_sensitive_fields_are_redacted_at_any_depth() -> None:
    rules = ShadowRules(sensitive=frozenset({"email"}))
    leaf = redacted(Difference("body", "/customers/0/email", "a@x.io", "b@x.io"), rules)
    assert (leaf.primary, leaf.shadow) == (REDACTED, REDACTED)
    whole = redacted(
        Difference("body", "/customers/1", {"id": 2, "email": "a@x.io"}, ABSENT), rules
    )
    assert whole.primary == {"id": 2, "email": REDACTED}
    assert whole.shadow is ABSENT
    text = redacted(Difference("body", "", "email=a@x.io", "nothing"), rules)
    assert (text.primary, text.shadow) == (REDACTED, REDACTED)
    other = Difference("body", "/name", "Ann", "Bob")
    assert redacted(other, rules) == other


def test_differences_are_bounded() -> None:
    result = compare(answer(list(range(100))), answer(list(range(1, 101))))
    assert len(result.differences) == MAX_DIFFERENCES


def test_a_rule_must_be_a_pointer() -> None:
    with pytest.raises(ValueError, match="JSON pointer"):
        ShadowRules(ignore=("updated_at",))
