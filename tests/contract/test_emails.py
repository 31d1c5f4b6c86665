"""One address, one customer, in any spelling: case, compatibility forms, invisible characters.

Both stacks agree on "the same email" through `shop_core.emails.email_key` (NFKC, then case
folding); the unique index is on that key, on every database alike. The address itself is
shown as the client wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select

from shop_core.emails import email_key
from shop_core.models import Customer
from tests.support import Stack, assert_error

_FULLWIDTH = str.maketrans({chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)})


def _fullwidth(text: str) -> str:
    """`text` in fullwidth forms (U+FF01..U+FF5E), as East Asian keyboards type it."""
    return text.translate(_FULLWIDTH)


# Two spellings of one address, made unique by the test's tag. SQLite's lower() folds
# none of these; PostgreSQL's folds the first only (and only under a UTF-8 collation).
SPELLINGS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "titlecase digraph": (lambda tag: f"\u01c4{tag}@x.io", lambda tag: f"\u01c6{tag}@x.io"),
    "sharp s": (lambda tag: f"STRASSE{tag}@x.io", lambda tag: f"stra\u00dfe{tag}@x.io"),
    "fullwidth": (lambda tag: f"full{tag}@x.io", lambda tag: _fullwidth(f"FULL{tag}") + "@x.io"),
}
# Invisible: an address with one looks like the address without it.
FORMAT_CHARACTERS = {
    "zero-width space": "\u200b",
    "right-to-left override": "\u202e",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "tag character": "\U000e0041",
}


def _rows_for(db: Engine, email: str) -> int:
    """How many customers have `email` in any spelling (read from the emails themselves)."""
    with db.connect() as conn:
        emails = conn.scalars(select(Customer.email)).all()
    return sum(email_key(stored) == email_key(email) for stored in emails)


def _invalid_fields(stack: Stack, answer: requests.Response) -> set[Any]:
    """The fields a validation error names, in the stack's dialect."""
    body = assert_error(stack, answer, stack.invalid_status)
    if stack.name == "legacy":
        return set(body["error"]["fields"])
    return {error["loc"][-1] for error in body["errors"]}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_two_spellings_of_one_address_are_one_customer(
    stack: Stack, legacy: Stack, v2: Stack, db: Engine, unique: str, spelling: str
) -> None:
    first, second = (make(unique.lower()) for make in SPELLINGS[spelling])
    created = stack.create_customer(unique, email=first)
    assert created["email"] == first
    for door in (legacy, v2):
        clash = {"name": "Clash", "email": second}
        assert_error(door, door.post("/customers", json=clash, user="clerk"), 409)
    assert _rows_for(db, first) == 1
    # Shown as written, on both stacks.
    for door in (legacy, v2):
        shown = door.get(f"/customers/{created['id']}", user="viewer").json()
        assert shown["email"] == first


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_email_filter_finds_any_spelling(stack: Stack, unique: str, spelling: str) -> None:
    first, second = (make(unique.lower()) for make in SPELLINGS[spelling])
    customer = stack.create_customer(unique, email=first)
    for sought in (first, second, first.upper()):
        body = stack.window("/customers", offset=0, limit=10, user="viewer", email=sought)
        assert [c["id"] for c in stack.items(body, "customers")] == [customer["id"]], sought
        assert body["total"] == 1


def test_a_replace_into_another_spelling_of_a_taken_address_is_a_conflict(
    stack: Stack, unique: str
) -> None:
    first, second = (make(unique.lower()) for make in SPELLINGS["sharp s"])
    stack.create_customer(unique, email=first)
    other = stack.create_customer(unique + "B")
    body = {"name": "Other", "email": second, "tier": "gold"}
    assert_error(stack, stack.put(f"/customers/{other['id']}", json=body, user="clerk"), 409)
    assert stack.get(f"/customers/{other['id']}", user="viewer").json() == other


def test_a_customer_may_respell_their_own_address(stack: Stack, unique: str) -> None:
    first, second = (make(unique.lower()) for make in SPELLINGS["titlecase digraph"])
    customer = stack.create_customer(unique, email=first)
    body = {"name": customer["name"], "email": second, "tier": customer["tier"]}
    answer = stack.put(f"/customers/{customer['id']}", json=body, user="clerk")
    assert answer.status_code == 200, answer.text
    assert answer.json()["email"] == second


@pytest.mark.parametrize("character", list(FORMAT_CHARACTERS.values()), ids=list(FORMAT_CHARACTERS))
def test_format_characters_in_an_email_are_invalid(
    stack: Stack, db: Engine, unique: str, character: str
) -> None:
    email = f"in{character}visible-{unique.lower()}@example.com"
    answer = stack.post("/customers", json={"name": "Invisible", "email": email}, user="clerk")
    assert _invalid_fields(stack, answer) == {"email"}
    assert _rows_for(db, email) == 0
    customer = stack.create_customer(unique)
    body = {"name": customer["name"], "email": email, "tier": customer["tier"]}
    answer = stack.put(f"/customers/{customer['id']}", json=body, user="clerk")
    assert _invalid_fields(stack, answer) == {"email"}
    assert stack.get(f"/customers/{customer['id']}", user="viewer").json() == customer


def test_format_characters_are_invalid_in_a_partial_update(v2: Stack, unique: str) -> None:
    customer = v2.create_customer(unique)
    body = {"email": f"in\u200bvisible-{unique.lower()}@example.com"}
    answer = v2.patch(f"/customers/{customer['id']}", json=body, user="clerk")
    assert _invalid_fields(v2, answer) == {"email"}


def test_an_address_too_long_once_normalised_is_invalid(
    stack: Stack, db: Engine, unique: str
) -> None:
    # U+FDFA is one character and eighteen once normalised: 100 of them are a 1,800
    # character key, past what the key may hold (and PostgreSQL's index, in bytes).
    email = "\ufdfa" * 100 + f"-{unique.lower()}@example.com"
    answer = stack.post("/customers", json={"name": "Long", "email": email}, user="clerk")
    assert _invalid_fields(stack, answer) == {"email"}
    assert _rows_for(db, email) == 0
