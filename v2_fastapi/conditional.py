"""Conditional requests: the If-Match and If-None-Match headers in, the ETag header out.

The tags and the RFC 9110 rules are `shop_core.etags`, shared with the legacy stack.
If-Match is checked by the services, on the row they lock for the write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response

from shop_core.etags import etag_of, if_none_match_passes, join_fields
from v2_fastapi.schemas.common import Representation

ResourceT = TypeVar("ResourceT", bound=Representation)

IF_MATCH_DESCRIPTION = (
    "Change or delete the resource only if its current ETag is one of these entity tags "
    "(or `*`), else 412 and nothing changes. Optional, and recommended: send the ETag of "
    "the representation the change is based on, so that a change made since (an order "
    "taking stock, another client's edit) is not overwritten. Weak tags never match."
)
IF_NONE_MATCH_DESCRIPTION = (
    "The ETag of a copy the client holds: if it is still current, the answer is 304 without a body."
)


# The parameters are declared for the OpenAPI document and for validation; the value is
# read from every line of the field, since a list of tags may be sent on several lines.
# `async def`: FastAPI would run a plain `def` dependency in its thread pool, a hop per request.
async def _if_match(
    request: Request,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description=IF_MATCH_DESCRIPTION)
    ] = None,
) -> str | None:
    return join_fields(request.headers.getlist("If-Match"))


async def _if_none_match(
    request: Request,
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", description=IF_NONE_MATCH_DESCRIPTION)
    ] = None,
) -> str | None:
    return join_fields(request.headers.getlist("If-None-Match"))


IfMatch = Annotated[str | None, Depends(_if_match)]
IfNoneMatch = Annotated[str | None, Depends(_if_none_match)]


def tagged(resource: ResourceT, response: Response) -> ResourceT:
    """The resource, with its ETag set on the answer."""
    response.headers["ETag"] = resource.etag()
    return resource


# What Starlette's JSONResponse writes, so that a body built here reads the same.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def json_answer(document: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """A 200 whose body is `document`, already in its JSON form, serialised once.

    Reads answer with this rather than a model: FastAPI would validate and serialise the
    model again on the way out. The route keeps `response_model` for the OpenAPI document.
    """
    return Response(_encode(document).encode(), media_type="application/json", headers=headers)


def list_answer(items: list[dict[str, Any]], *, total: int, limit: int, offset: int) -> Response:
    """A list window as every v2 list answers it: the items and where they sit."""
    return json_answer({"items": items, "total": total, "limit": limit, "offset": offset})


def json_answer_unless_current(document: Mapping[str, Any], if_none_match: str | None) -> Response:
    """`document` with its ETag, or 304 if the client's copy (If-None-Match) is current.

    The tag is computed from the same JSON object as the body, as `Representation.etag` does.
    """
    etag = etag_of(document)
    if not if_none_match_passes(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return json_answer(document, {"ETag": etag})
