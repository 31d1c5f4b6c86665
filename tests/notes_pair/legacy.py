"""The notes pair's legacy side: a small Flask app, written the way Flask apps are.

`create_app()` is the factory the gateway is pointed at (`tests.notes_pair.legacy:create_app`).
Notes live in memory, per app. Errors are the pair's `{"fault": ...}` JSON, never HTML.
Each view logs one line with the request id it finds in the WSGI environ, so that a test
can see the gateway's request id reach the app's own logs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.notes_pair.errors import fault

log = logging.getLogger("notes.legacy")

MAX_TEXT_CHARS = 1000

bp = Blueprint("notes", __name__)


class NoteStore:
    """Notes by id, shared by the threads of the server that runs the app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notes: dict[int, str] = {}
        self._next_id = 1

    def add(self, text: str) -> dict[str, Any]:
        with self._lock:
            note_id = self._next_id
            self._next_id += 1
            self._notes[note_id] = text
        return {"id": note_id, "text": text}

    def get(self, note_id: int) -> dict[str, Any] | None:
        with self._lock:
            text = self._notes.get(note_id)
        return None if text is None else {"id": note_id, "text": text}

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": note_id, "text": text} for note_id, text in self._notes.items()]


def _store() -> NoteStore:
    store: NoteStore = current_app.extensions["notes"]
    return store


def _log_view(view: str) -> None:
    log.info("%s request_id=%s", view, request.environ.get("HTTP_X_REQUEST_ID"))


@bp.get("/notes")
def list_notes() -> Response:
    _log_view("list_notes")
    return jsonify(notes=_store().all())


@bp.get("/notes/<int:note_id>")
def get_note(note_id: int) -> Response:
    _log_view("get_note")
    note = _store().get(note_id)
    if note is None:
        raise NotFound(f"note {note_id} not found")
    return jsonify(note)


@bp.post("/notes")
def create_note() -> tuple[Response, int, dict[str, str]]:
    _log_view("create_note")
    # A malformed or non-JSON body raises BadRequest, answered by the fault handler.
    data = request.get_json()
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise BadRequest(f'"text" must be a non-empty string of at most {MAX_TEXT_CHARS} chars')
    note = _store().add(text)
    location = url_for("notes.get_note", note_id=note["id"])
    return jsonify(note), 201, {"Location": location}


@bp.get("/slow")
def slow() -> Response:
    """Holds its thread for `seconds` (at most SLOW_MAX_S): a stand-in for a slow query."""
    _log_view("slow")
    seconds = request.args.get("seconds", type=float)
    limit: float = current_app.config["SLOW_MAX_S"]
    # `not 0 <= seconds` also refuses NaN.
    if seconds is None or not 0 <= seconds <= limit:
        raise BadRequest(f'"seconds" must be a number from 0 to {limit:g}')
    time.sleep(seconds)
    return jsonify(slept=seconds)


def _fault_response(error: HTTPException) -> WerkzeugResponse:
    """Any HTTP error (404, 405, 400, and 500 for an unhandled exception) as a fault."""
    response = error.get_response()  # keeps the error's headers, `Allow` on a 405 among them
    status = error.code or 500
    code = error.name.lower().replace(" ", "_")
    response.set_data(jsonify(fault(status, code, error.description or error.name)).get_data())
    response.content_type = "application/json"
    return response


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SLOW_MAX_S=10.0)
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.extensions["notes"] = NoteStore()
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _fault_response)
    return app
