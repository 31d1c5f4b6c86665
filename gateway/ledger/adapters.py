"""Adapters made of parts: a legacy request served by v2, answered in the legacy contract.

`V2Adapter(method, path, parts)` is an `Adapter` (model.py): it reads the legacy request,
fills the v2 path with the rule's parameters, lets each part rewrite the v2 request
(`before`, in order), calls the v2 app in process, and lets each part rewrite the answer
(`after`, in reverse order, so the first part listed has the last word) before the legacy
client gets it. Headers pass through both ways (`Authorization`, `If-Match`, `ETag`...).

The parts here are what most pairs need; a route that needs more gets a part of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.ledger.compare import ShadowRules
from gateway.ledger.inprocess import V2_ROOT_KEY, V2Answer, V2Request, call_v2, read_body
from gateway.ledger.model import LedgerRoute
from gateway.ledger.rules import fill_path

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
FORM = b"application/x-www-form-urlencoded"
# The legacy contract's refusal of a body that is no JSON object of Unicode text.
UNREADABLE = "The body must be a valid JSON object."
# Headers that describe a body an adapter may have rewritten: set again from the new body.
_BODY_HEADERS = frozenset({b"content-length", b"content-type"})


@dataclass
class Exchange:
    """One legacy request on its way through v2, as the parts see and change it."""

    scope: Scope  # the legacy request's
    params: Mapping[str, Any]
    request: V2Request
    # v2 field name -> legacy field name, for the fields an error names.
    field_names: dict[str, str] = field(default_factory=dict)
    # Set by a part's `before` to answer without calling v2: a request the legacy contract
    # refuses before v2 would read it. The `after` parts still see it.
    answer: V2Answer | None = None

    @property
    def legacy_root(self) -> str:
        root: str = self.scope.get("root_path", "")
        return root

    @property
    def v2_root(self) -> str:
        root: str = self.scope[V2_ROOT_KEY]
        return root


class Part(Protocol):
    def before(self, exchange: Exchange) -> None: ...

    def after(self, exchange: Exchange, answer: V2Answer) -> None: ...


class BasePart:
    """A part that changes nothing; parts override the half they need."""

    def before(self, exchange: Exchange) -> None:
        pass

    def after(self, exchange: Exchange, answer: V2Answer) -> None:
        pass


def json_of(answer: V2Answer) -> Any:
    """The answer's JSON body, parsed once for all parts (None when it is not JSON)."""
    if "json" not in answer.cache:
        content_type = answer.header(b"content-type") or b""
        value = None
        if content_type.startswith((JSON, PROBLEM_JSON)) and answer.body:
            try:
                value = json.loads(answer.body)
            except ValueError:
                value = None
        answer.cache["json"] = value
    return answer.cache["json"]


def set_json(answer: V2Answer, value: Any, content_type: bytes = JSON) -> None:
    answer.cache["json"] = value
    answer.cache["dirty"] = True
    answer.set_header(b"content-type", content_type)


class V2Adapter:
    """Serves a legacy route with the v2 route `method path`, through `parts`."""

    def __init__(self, method: str, path: str, parts: Sequence[Part] = ()) -> None:
        self.method = method
        self.path = path
        self.parts = tuple(parts)

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        params: Mapping[str, Any],
        v2: ASGIApp,
    ) -> None:
        request = V2Request(
            method=self.method,
            path=fill_path(self.path, params),
            query_string=scope.get("query_string", b""),
            headers=list(scope["headers"]),
            body=await read_body(receive),
        )
        exchange = Exchange(scope, params, request)
        for part in self.parts:
            part.before(exchange)
            if exchange.answer is not None:
                break
        answer = exchange.answer or await call_v2(v2, scope, receive, exchange.request)
        for part in reversed(self.parts):
            part.after(exchange, answer)
        if answer.cache.get("dirty"):
            answer.body = json.dumps(answer.cache["json"], separators=(",", ":")).encode()
        headers = [(key, value) for key, value in answer.headers if key != b"content-length"]
        if answer.status not in (204, 304):
            headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


def problem_answer(status: int, detail: str) -> V2Answer:
    """An answer in v2's error format, as v2 would give it, for a part to answer with."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    return V2Answer(
        status=status,
        headers=[(b"content-type", PROBLEM_JSON)],
        body=json.dumps(body | {"detail": detail}).encode(),
    )


# --- the request: body and query ---------------------------------------------------------


def _replace_body(request: V2Request, body: bytes, content_type: bytes) -> None:
    request.headers = [
        (key, value) for key, value in request.headers if key not in _BODY_HEADERS
    ] + [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    request.body = body


def _json_request(request: V2Request) -> Any:
    """The request's JSON value; None when it has none (v2 then says what is wrong)."""
    content_type = next((v for k, v in request.headers if k == b"content-type"), b"")
    if not content_type.split(b";")[0].strip().endswith(b"json"):
        return None
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):
        return None


# A body shape: the fields v2 takes, each None (a value) or the shape of its items.
Shape = Mapping[str, "Shape | None"]


def _keep(value: Any, shape: Shape, money: frozenset[str]) -> Any:
    if not isinstance(value, dict):
        return value
    kept = {}
    for name, inner in value.items():
        if name not in shape:
            continue
        nested = shape[name]
        if nested is not None and isinstance(inner, list):
            inner = [_keep(item, nested, money) for item in inner]
        elif name in money and isinstance(inner, int | float) and not isinstance(inner, bool):
            # A JSON number, read back as the shortest text for it: 19.99 -> "19.99".
            inner = str(inner)
        kept[name] = inner
    return kept


@dataclass(frozen=True)
class LenientBody(BasePart):
    """Legacy leniency before v2's strict models: unknown fields dropped, money as a number.

    `shape` names the fields v2 takes (a nested shape for a list of objects); `money` the
    fields where a JSON number stands for the amount v2 wants as a string.
    """

    shape: Shape
    money: frozenset[str] = frozenset()

    def before(self, exchange: Exchange) -> None:
        value = _json_request(exchange.request)
        if isinstance(value, dict) and not _encodable(value):
            # Dropping the unknown fields could drop the bad text with them.
            exchange.answer = problem_answer(400, UNREADABLE)
        elif isinstance(value, dict):
            kept = _keep(value, self.shape, self.money)
            _replace_body(exchange.request, json.dumps(kept).encode(), JSON)


@dataclass(frozen=True)
class FormLogin(BasePart):
    """A JSON login body (`{"username", "password"}`) as the OAuth2 password form."""

    fields: tuple[str, ...] = ("username", "password")

    def before(self, exchange: Exchange) -> None:
        value = _json_request(exchange.request)
        if not isinstance(value, dict) or not _encodable(value):
            # No form could say it: the legacy login reads a JSON object or refuses the body.
            exchange.answer = problem_answer(400, UNREADABLE)
            return
        # A field that is not a string is left out: v2 then names it as missing.
        form = [(name, value[name]) for name in self.fields if isinstance(value.get(name), str)]
        form.append(("grant_type", "password"))
        _replace_body(exchange.request, urlencode(form).encode(), FORM)


def _encodable(value: Any) -> bool:
    """Whether the value's strings are Unicode text: JSON's `\\ud800` escapes are not."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class PageWindow(BasePart):
    """`page/per_page` in, `limit/offset` to v2; v2's `items` back under the legacy key.

    The legacy answer: `{key: [...], "page", "per_page", "total"}`. A page or per_page
    that is not a number goes to v2 as it is, and the error names the legacy parameter.
    """

    key: str
    default_per_page: int = 20
    # The largest page legacy takes, and the largest offset v2 takes (None: no limit).
    max_page: int | None = None
    max_offset: int | None = None

    def before(self, exchange: Exchange) -> None:
        query = parse_qsl(exchange.request.query_string.decode("latin-1"), keep_blank_values=True)
        page = next((value for name, value in query if name == "page"), "1")
        per_page = next((value for name, value in query if name == "per_page"), None)
        size = per_page if per_page is not None else str(self.default_per_page)
        offset = self._offset(page, size)
        rest = [(name, value) for name, value in query if name not in ("page", "per_page")]
        window = [("offset", offset), ("limit", size)]
        exchange.request.query_string = urlencode(rest + window).encode()
        exchange.field_names.update(limit="per_page", offset="page")

    def after(self, exchange: Exchange, answer: V2Answer) -> None:
        body = json_of(answer)
        if answer.status != 200 or not isinstance(body, dict) or "items" not in body:
            return
        limit, offset = body["limit"], body["offset"]
        query = parse_qsl(exchange.scope.get("query_string", b"").decode("latin-1"))
        # The page asked for: its offset may have been held at v2's largest.
        page = next((value for name, value in query if name == "page"), "")
        legacy = {
            self.key: body["items"],
            "page": int(page) if _digits(page) else offset // limit + 1,
            "per_page": limit,
            "total": body["total"],
        }
        set_json(answer, legacy)

    def _offset(self, page: str, size: str) -> str:
        """The offset v2 gets for a page, so that v2 names the page exactly when legacy would.

        A page that is no number goes as it is (v2 says so); a page out of legacy's range as
        an offset below 0 (out of range there too); a good page with a bad size as offset
        0, so that only the size is named; otherwise the window's first row, held at v2's
        largest offset (a window past the last row is empty wherever it starts).
        """
        if not _digits(page):
            return page
        if not 1 <= int(page) <= (self.max_page or int(page)):
            return "-1"
        if not _digits(size):
            return "0"
        offset = (int(page) - 1) * int(size)
        return str(offset if self.max_offset is None else min(offset, self.max_offset))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# --- the answer: errors and Location --------------------------------------------------------

# (status, code, message, fields or None) -> (content type, body): the legacy error format,
# with the fields a validation error names.
LegacyErrorFormat = Callable[[int, str, str, Mapping[str, Any] | None], tuple[str, bytes]]


def _code(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def _fields(errors: list[Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Problem details' `errors` (Pydantic's `loc`) as nested fields: `{"items": {"0":
    {"quantity": [message]}}}`, the shape marshmallow gives."""
    fields: dict[str, Any] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "form"):
            loc = loc[1:]
        loc = [names.get(part, part) for part in loc] or ["_schema"]
        node = fields
        for part in loc[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            messages = node.setdefault(loc[-1], [])
            if isinstance(messages, list):
                messages.append(str(error.get("msg", "Invalid value.")))
    return fields


@dataclass(frozen=True)
class LegacyErrors(BasePart):
    """v2's problem details in the legacy error format: 422 becomes `invalid_status` (400),
    naming the fields; every other status keeps its number. `codes` are the legacy app's
    error codes by status (the HTTP phrase in snake case for the others)."""

    render: LegacyErrorFormat
    codes: Mapping[int, str] = field(default_factory=dict)
    invalid_status: int = 400
    invalid_code: str = "validation_error"
    invalid_message: str = "The input is not valid."
    # Errors whose type says the body is no JSON object at all: a bad request, no fields.
    # ("missing" at the body itself: no body at all.)
    unreadable: frozenset[str] = frozenset({"model_attributes_type", "dict_type", "missing"})
    # Errors that say the body could not be read, wherever they point (a JSON syntax error
    # points at its position in the text).
    malformed: frozenset[str] = frozenset({"json_invalid"})

    def after(self, exchange: Exchange, answer: V2Answer) -> None:
        content_type = answer.header(b"content-type") or b""
        if not content_type.startswith(PROBLEM_JSON):
            return
        problem = json_of(answer)
        if not isinstance(problem, dict):
            return
        status = answer.status
        message = str(problem.get("detail") or problem.get("title") or _code(status))
        fields = None
        code = self.codes.get(status) or _code(status)
        if status == 422:
            errors = problem.get("errors") or []
            status = self.invalid_status
            unreadable = any(
                error.get("type") in self.malformed
                or (error.get("type") in self.unreadable and len(error.get("loc", ())) <= 1)
                for error in errors
            )
            if unreadable:
                code = self.codes.get(status) or _code(status)
            else:
                code, message = self.invalid_code, self.invalid_message
                fields = _fields(errors, exchange.field_names)
        content, body = self.render(status, code, message, fields)
        answer.status = status
        answer.body = body
        answer.cache.pop("dirty", None)
        answer.cache["json"] = None
        answer.set_header(b"content-type", content.encode("latin-1"))


@dataclass(frozen=True)
class LegacyLocation(BasePart):
    """A `Location` under the v2 prefix, moved under the legacy one (same path below)."""

    def after(self, exchange: Exchange, answer: V2Answer) -> None:
        location = answer.header(b"location")
        v2_root = exchange.v2_root.encode("latin-1")
        if location is not None and location.startswith(v2_root + b"/"):
            legacy = exchange.legacy_root.encode("latin-1") + location[len(v2_root) :]
            answer.set_header(b"location", legacy)


def paired(
    route_id: str,
    legacy: str,
    v2: str,
    *parts: Part,
    deprecation_docs: str | None = None,
    shadow: ShadowRules | None = None,
) -> LedgerRoute:
    """A ledger row served through a `V2Adapter`: `paired("products.read", "GET
    /products/<id:product_id>", "GET /products/{product_id}", LegacyErrors(...))`."""
    legacy_method, legacy_rule = legacy.split(" ", 1)
    v2_method, v2_path = v2.split(" ", 1)
    return LedgerRoute(
        id=route_id,
        legacy_method=legacy_method,
        legacy_rule=legacy_rule,
        v2_method=v2_method,
        v2_path=v2_path,
        adapter=V2Adapter(v2_method, v2_path, parts),
        deprecation_docs=deprecation_docs,
        shadow=shadow,
    )


def legacy_only(route_id: str, legacy: str, *, reason: str) -> LedgerRoute:
    """A ledger row that stays on the legacy app, and why."""
    method, rule = legacy.split(" ", 1)
    return LedgerRoute(id=route_id, legacy_method=method, legacy_rule=rule, legacy_only=reason)
