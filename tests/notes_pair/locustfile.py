"""The notes pair under load: each flow written once, run on both sides.

    python -m loadtests.compare -f tests/notes_pair/locustfile.py \
        --legacy tests.notes_pair.legacy:create_app --v2 tests.notes_pair.v2:app \
        --legacy-errors tests.notes_pair.errors:legacy_error \
        --v2-errors tests.notes_pair.errors:v2_error
"""

from __future__ import annotations

import random
import uuid

from locust import task

from loadtests.pairs import JsonObject, PairedUser
from tests.notes_pair.dialects import LEGACY, V2


class NotesFlows(PairedUser):
    abstract = True

    def set_up(self) -> None:
        self.note_ids: list[int] = []
        self.write_note()

    @task(3)
    def write_note(self) -> None:
        text = f"note {uuid.uuid4().hex}"

        def same(body: JsonObject) -> str | None:
            return None if body.get("text") == text else f"not the note sent: {body}"

        note = self.call(
            "POST", "/notes", name="/notes", status=201, json={"text": text}, check=same
        )
        if note is not None:
            self.note_ids.append(note["id"])

    @task(10)
    def read_note(self) -> None:
        if not self.note_ids:
            self.write_note()
            return
        note_id = random.choice(self.note_ids)

        def same(body: JsonObject) -> str | None:
            return None if body.get("id") == note_id else f"not note {note_id}: {body}"

        self.call("GET", f"/notes/{note_id}", name="/notes/{id}", check=same)

    @task(2)
    def list_notes(self) -> None:
        self.list_of("notes", {}, name="/notes")

    @task(1)
    def refuse_an_empty_note(self) -> None:
        # Refused in the side's own error format, at the side's own validation status.
        status = self.dialect.invalid_status
        self.call("POST", "/notes", name="/notes (empty)", status=status, json={"text": ""})

    @task(1)
    def miss_a_note(self) -> None:
        self.call("GET", "/notes/0", name="/notes/{id} (missing)", status=404)


class LegacyUser(NotesFlows):
    dialect = LEGACY


class V2User(NotesFlows):
    dialect = V2
