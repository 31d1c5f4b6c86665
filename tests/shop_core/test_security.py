"""Password checks and bearer headers, as functions (the login tests cover them in use)."""

from __future__ import annotations

import pytest

from shop_core.security import bearer_token, hash_password, verify_password


def test_no_hash_verifies_no_password_not_even_the_stand_ins() -> None:
    # Unknown users are checked against a stand-in hash of a known text, so that they take
    # as long as a wrong password: that text must not verify as theirs.
    assert verify_password(None, "no such user") is False
    assert verify_password(None, "") is False


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("s3cret")
    assert verify_password(stored, "s3cret") is True
    assert verify_password(stored, "S3cret") is False
    assert verify_password("not-a-hash", "s3cret") is False


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_is_the_token_of_a_bearer_header_only(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token
