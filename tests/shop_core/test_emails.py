"""The email key and the format characters both stacks refuse, from `shop_core.emails`."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from shop_core.emails import FORMAT_CHARACTER_CLASS, check_email, email_key


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("\u01c4@x.io", "\u01c6@x.io"),  # a titlecase digraph and its small form
        ("STRASSE@x.io", "stra\u00dfe@x.io"),  # full case folding: ß is ss
        ("\uff21\uff24\uff21@x.io", "ada@x.io"),  # fullwidth letters
        ("j\u030c@x.io", "\u01f0@x.io"),  # a combining caron, or the precomposed letter
    ],
)
def test_spellings_of_one_address_share_a_key(one: str, other: str) -> None:
    assert email_key(one) == email_key(other)
    assert email_key(email_key(one)) == email_key(one)


def test_the_listed_format_characters_are_the_ones_python_knows() -> None:
    # The table v2's documented pattern is built from must hold every Cf character of the
    # Unicode tables this Python has; a newer Python with new ones says so here.
    listed = re.compile(f"[{FORMAT_CHARACTER_CLASS}]")
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if unicodedata.category(character) == "Cf":
            assert listed.fullmatch(character), f"U+{code:04X} is missing from the table"


@pytest.mark.parametrize("character", ["\u200b", "\u202e", "\u00ad", "\U000e0041"])
def test_format_characters_are_refused(character: str) -> None:
    with pytest.raises(ValueError, match="format characters"):
        check_email(f"a{character}b@x.io")
    assert check_email("ab@x.io") == "ab@x.io"
