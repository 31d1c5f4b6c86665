"""The notes pair's v2 side: a small FastAPI app, written the way FastAPI apps are.

`app` is a module-level global (`tests.notes_pair.v2:app`), as uvicorn users write it. Its
lifespan opens the one thing it needs, an in-memory SQLite database kept on `app.state`,
and closes it on the way out. A route that finds no database answers 500: that is how a
mount that forgets the lifespan shows. Errors are `application/vnd.notes.error+json`.
Each route logs the request id it sees, so that a test can find it in the app's logs.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from tests.notes_pair.errors import V2_CONTENT_TYPE, v2_problem

log = logging.getLogger("notes.v2")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Routes are `async def` and run in the event loop, the thread that opens this
    # connection: sqlite3's same-thread check holds.
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    app.state.notes_db = connection
    log.info("notes database opened")
    try:
        yield
    finally:
        del app.state.notes_db
        connection.close()
        log.info("notes database closed")


app = FastAPI(title="Notes", lifespan=lifespan)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)


class NoteOut(BaseModel):
    id: int
    text: str


def notes_db(request: Request) -> sqlite3.Connection:
    connection: sqlite3.Connection | None = getattr(request.app.state, "notes_db", None)
    if connection is None:
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "the app's lifespan did not run: no database"
        )
    return connection


NotesDb = Annotated[sqlite3.Connection, Depends(notes_db)]


def _log_route(route: str, request: Request) -> None:
    log.info("%s request_id=%s", route, request.headers.get("x-request-id"))


@app.get("/lifespan")
async def lifespan_ran(request: Request, db: NotesDb) -> dict[str, bool]:
    _log_route("lifespan", request)
    return {"lifespan_ran": db.execute("SELECT 1").fetchone() == (1,)}


class NoteList(BaseModel):
    notes: list[NoteOut]


@app.get("/notes")
async def list_notes(request: Request, db: NotesDb) -> NoteList:
    _log_route("list_notes", request)
    rows = db.execute("SELECT id, text FROM note ORDER BY id").fetchall()
    return NoteList(notes=[NoteOut(id=row[0], text=row[1]) for row in rows])


@app.get("/notes/{note_id}", responses={404: {"description": "No such note"}})
async def get_note(note_id: int, request: Request, db: NotesDb) -> NoteOut:
    _log_route("get_note", request)
    row = db.execute("SELECT id, text FROM note WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"note {note_id} not found")
    return NoteOut(id=row[0], text=row[1])


@app.post("/notes", status_code=status.HTTP_201_CREATED)
async def create_note(note: NoteIn, request: Request, response: Response, db: NotesDb) -> NoteOut:
    _log_route("create_note", request)
    with db:  # one transaction: committed on the way out
        note_id = db.execute("INSERT INTO note (text) VALUES (?)", (note.text,)).lastrowid
    assert note_id is not None
    response.headers["Location"] = str(request.url_for("get_note", note_id=note_id).path)
    return NoteOut(id=note_id, text=note.text)


def _error(status_code: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        v2_problem(status_code, code, detail) | extra,
        status_code=status_code,
        media_type=V2_CONTENT_TYPE,
    )


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    answer = _error(exc.status_code, _code(exc.status_code), str(exc.detail))
    answer.headers.update(exc.headers or {})  # `Allow` on a 405
    return answer


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": [str(part) for part in error["loc"]], "msg": error["msg"]} for error in exc.errors()
    ]
    return _error(422, "validation_failed", "the request is not valid", errors=errors)


@app.exception_handler(Exception)
async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    # Logged by the server; the client gets the pair's format, never a traceback.
    return _error(500, "internal_server_error", "internal error")


def _code(status_code: int) -> str:
    return HTTPStatus(status_code).phrase.lower().replace(" ", "_")
