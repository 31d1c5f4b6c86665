"""Conditional requests: the ETag header on single resources, If-Match and If-None-Match.

The tags and the RFC 9110 rules are `shop_core.etags`, shared with v2, so a row has the
same ETag on both stacks and a tag read from one is good for a change through the other.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, make_response, request
from werkzeug.exceptions import PreconditionFailed

from shop_core.etags import PRECONDITION_FAILED, etag_of, if_match_passes, if_none_match_passes


def tagged(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The resource's JSON answer, with its ETag."""
    return make_response(jsonify(body), status, {**(headers or {}), "ETag": etag_of(body)})


def tagged_unless_current(body: dict[str, Any]) -> Response:
    """The resource with its ETag, or 304 if the client's copy (If-None-Match) is current."""
    etag = etag_of(body)
    if not if_none_match_passes(request.headers.get("If-None-Match"), etag):
        return make_response("", 304, {"ETag": etag})
    return make_response(jsonify(body), 200, {"ETag": etag})


def check_if_match(current: dict[str, Any]) -> None:
    """412 unless If-Match, when sent, names the tag of `current`, the row locked for the write."""
    # WSGI servers fold a field sent on several lines into one, comma-separated.
    if not if_match_passes(request.headers.get("If-Match"), etag_of(current)):
        raise PreconditionFailed(PRECONDITION_FAILED)
