"""Entity tags for single resources, and the RFC 9110 preconditions both stacks evaluate.

A resource's tag is a hash of the canonical JSON of the object the API answers with (keys
sorted, no spaces, ASCII escapes). Both stacks answer the same JSON object for a row, so a
row has one tag whichever stack is asked; and since the object holds every field, among
them `updated_at` (which an order and a cancel move too), the tag changes whenever the
representation does. It is a strong tag: the representation is the same JSON object
whenever the tag is the same.

Headers are parsed here rather than with Werkzeug's `parse_etags`: v2 does not depend on
Flask's toolkit, and the grammar is strict (an unquoted tag is no tag) the same way on both.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = r'(W/)?("[\x21\x23-\x7e\x80-\xff]*+")'
_TAG = re.compile(_ENTITY_TAG)
# A list of entity tags, empty elements allowed (RFC 9110, 5.6.1). The groups inside are
# only for `_TAG`; here the whole field has to be such a list, or it names no tag at all.
# Possessive quantifiers (`*+`): a long run of spaces cannot make the match backtrack.
_OWS = r"[ \t]*+"
_LIST = re.compile(rf"{_OWS}(?:{_ENTITY_TAG})?(?:{_OWS},{_OWS}(?:{_ENTITY_TAG})?)*{_OWS}")


# The message of a 412, on both stacks.
PRECONDITION_FAILED = (
    "If-Match names no current entity tag of this resource: it has changed since it was "
    "read (or the tag sent is weak or malformed). Read it again, then retry."
)


def etag_of(representation: Mapping[str, Any]) -> str:
    """The strong entity tag, quotes included, of a resource's JSON object."""
    canonical = json.dumps(representation, sort_keys=True, separators=(",", ":"))
    return f'"{hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()}"'


def _tags(field: str) -> Iterator[tuple[bool, str]]:
    """(weak, opaque tag with its quotes) for each tag of a well-formed list; none otherwise."""
    if _LIST.fullmatch(field):
        for match in _TAG.finditer(field):
            yield match.group(1) is not None, match.group(2)


def _is_star(field: str) -> bool:
    return field.strip(" \t") == "*"


def if_match_passes(field: str | None, current: str) -> bool:
    """RFC 9110, 13.1.1: no field, `*`, or a tag of the list equal to `current`, strongly.

    A weak tag never matches. An empty or malformed field names no tag, so it fails: a
    client that meant to send a tag and sent none must not overwrite someone else's change.
    The caller answers 404 first when there is no current representation.
    """
    if field is None or _is_star(field):
        return True
    return any(not weak and tag == current for weak, tag in _tags(field))


def if_none_match_passes(field: str | None, current: str) -> bool:
    """RFC 9110, 13.1.2: false (answer 304 to a GET) when `*` or a tag matches, even weakly."""
    if field is None:
        return True
    if _is_star(field):
        return False
    return all(tag != current for _weak, tag in _tags(field))


def join_fields(values: list[str]) -> str | None:
    """Several lines of one list field read as one (RFC 9110, 5.3), as WSGI servers fold them."""
    return ",".join(values) if values else None
