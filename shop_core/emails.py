"""Email addresses: the key two spellings of one address share, and what an address may hold.

Both stacks and the database agree on "the same email" through `email_key`: the unique
index is on the key, and the `?email=` filter compares keys. The address itself is kept as
the client wrote it, so that clients read back what they stored.

The key is computed here, in Python, rather than with the database's `lower()`: SQLite's
folds only ASCII, PostgreSQL's depends on the server's collation, and neither knows
compatibility forms (fullwidth letters, ligatures) or full case folding (`ß` = `ss`).
"""

from __future__ import annotations

import re
import unicodedata

MAX_EMAIL_LENGTH = 320
# The key of an address may be longer than the address (`ß` is `ss`, one character can
# become eighteen): bounded too, so that a key always fits in a PostgreSQL index entry.
MAX_EMAIL_KEY_LENGTH = MAX_EMAIL_LENGTH
# Unicode's format characters (category Cf) as of Unicode 15.1, as ranges of code points.
# Written out rather than read from `unicodedata` so that v2's pattern can name them: that
# pattern is read by Pydantic's engine, by ECMAScript's and by Schemathesis' (Python's
# `re`), and they share no `\p{Cf}`. `check_email` also asks `unicodedata`, so a Python
# with newer tables refuses the newer ones on both stacks.
FORMAT_CHARACTER_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _class_member(code: int) -> str:
    # `\uXXXX` means the same to Python, ECMAScript and Rust; above U+FFFF they share no
    # escape (`\U0001D173`, `\u{1D173}`), but all read the character itself as one.
    return f"\\u{code:04X}" if code <= 0xFFFF else chr(code)


# The ranges as the inside of a regex character class: `[^{FORMAT_CHARACTER_CLASS}]`.
FORMAT_CHARACTER_CLASS = "".join(
    _class_member(first) if first == last else f"{_class_member(first)}-{_class_member(last)}"
    for first, last in FORMAT_CHARACTER_RANGES
)


_LISTED_FORMAT_CHARACTER = re.compile(f"[{FORMAT_CHARACTER_CLASS}]")


def first_format_character(text: str) -> str | None:
    """The first format character in `text`: listed above, or Cf in this Python's tables."""
    if text.isascii():  # no format character is ASCII: most addresses stop here
        return None
    if listed := _LISTED_FORMAT_CHARACTER.search(text):
        return listed.group()
    return next((c for c in text if unicodedata.category(c) == "Cf"), None)


def email_key(email: str) -> str:
    """The address in the form every spelling of it shares: NFKC, case-folded, NFKC again.

    NFKC first turns compatibility forms into plain letters (fullwidth U+FF21 is `A`, the
    ligature `Ǆ` is `DŽ`); case folding then makes `DŽ` and `dž`, or `STRASSE` and
    `straße`, one string. Folding can leave a string that is no longer NFKC (`ǰ` folds to
    `j` and a combining caron), so it is normalised once more: equal keys are equal strings.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())


def check_email(email: str) -> str:
    """`email` if an address may hold it, else ValueError saying why.

    Format characters (Unicode category Cf: zero-width space, right-to-left override, byte
    order mark, soft hyphen...) are invisible: two addresses that look the same on screen
    could be stored as two customers, and an override can make one read as another.
    """
    if (character := first_format_character(email)) is not None:
        raise ValueError(f"Must not contain invisible format characters (U+{ord(character):04X}).")
    if len(email_key(email)) > MAX_EMAIL_KEY_LENGTH:
        raise ValueError(
            f"Must be at most {MAX_EMAIL_KEY_LENGTH} characters once normalised "
            "(case folding and compatibility forms can lengthen an address)."
        )
    return email
