"""Entity tags and the RFC 9110 precondition rules both stacks share."""

from __future__ import annotations

import time

import pytest

from shop_core.etags import etag_of, if_match_passes, if_none_match_passes, join_fields

CURRENT = etag_of({"id": 1, "stock": 70})
OTHER = etag_of({"id": 1, "stock": 100})


def test_a_tag_is_a_quoted_hash_of_the_json_object_whatever_its_key_order() -> None:
    assert CURRENT.startswith('"') and CURRENT.endswith('"') and len(CURRENT) == 34
    assert etag_of({"stock": 70, "id": 1}) == CURRENT
    assert OTHER != CURRENT
    # A string is not the number it spells: the JSON differs, so does the tag.
    assert etag_of({"id": 1, "stock": "70"}) != CURRENT


@pytest.mark.parametrize(
    ("field", "passes"),
    [
        (None, True),
        ("*", True),
        (" * ", True),
        (CURRENT, True),
        (f"{OTHER}, {CURRENT}", True),
        (f" ,{OTHER},, {CURRENT} ,", True),  # empty list elements are allowed
        (f'"a,b", {CURRENT}', True),  # a comma may sit inside a tag
        (OTHER, False),
        (f"W/{CURRENT}", False),  # weak tags never match for If-Match
        (f"{OTHER}, W/{CURRENT}", False),
        ("", False),  # a field that names no tag fails rather than being ignored
        (CURRENT.strip('"'), False),  # unquoted: not an entity tag
        (f"{CURRENT} junk", False),
        (f"*, {CURRENT}", False),  # `*` stands alone
        (f"{CURRENT}\x00", False),
    ],
)
def test_if_match(field: str | None, passes: bool) -> None:
    assert if_match_passes(field, CURRENT) is passes


@pytest.mark.parametrize(
    ("field", "passes"),
    [
        (None, True),
        (OTHER, True),
        ("", True),
        ("*", False),
        (CURRENT, False),
        (f"W/{CURRENT}", False),  # If-None-Match compares weakly
        (f"{OTHER}, {CURRENT}", False),
    ],
)
def test_if_none_match(field: str | None, passes: bool) -> None:
    assert if_none_match_passes(field, CURRENT) is passes


def test_a_field_on_several_lines_is_one_list() -> None:
    assert join_fields([]) is None
    assert if_match_passes(join_fields([OTHER, CURRENT]), CURRENT)


@pytest.mark.parametrize(
    "field",
    [" " * 100_000 + "x", '"' + "a," * 100_000, '"a",' * 50_000 + "x", "W/" * 100_000],
)
def test_a_huge_field_is_read_in_linear_time(field: str) -> None:
    started = time.perf_counter()
    assert not if_match_passes(field, CURRENT)
    # Quadratic backtracking would take minutes here; linear work takes milliseconds.
    assert time.perf_counter() - started < 2.0
