"""Import strings for `--legacy` and `--v2`, read the way Flask's `--app` reads them."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from flask import Flask

from gateway.loading import ImportStringError, load


def test_a_name_gives_the_object_it_names() -> None:
    app = load("tests.notes_pair.v2:app")
    assert isinstance(app, FastAPI)


@pytest.mark.parametrize(
    "spec",
    ["tests.notes_pair.legacy:create_app", "tests.notes_pair.legacy:create_app()"],
)
def test_a_factory_is_called_with_or_without_parentheses(spec: str) -> None:
    assert isinstance(load(spec), Flask)


def test_a_factory_call_takes_literal_arguments() -> None:
    app = load('tests.notes_pair.legacy:create_app({"TESTING": True})')
    assert isinstance(app, Flask)
    assert app.config["TESTING"] is True


def test_a_module_alone_gives_its_app() -> None:
    assert isinstance(load("tests.notes_pair.v2"), FastAPI)


def test_functions_that_are_not_factories_are_left_uncalled_when_asked() -> None:
    check = load("tests.notes_pair.checks:notes_ready", call_factories=False)
    assert callable(check)
    assert check.__name__ == "notes_ready"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module_here:app", "cannot import"),
        ("tests.notes_pair.v2:missing", "has no 'missing'"),
        ("tests.notes_pair.legacy:create_app(open('x'))", "arguments must be literals"),
        ("tests.notes_pair.legacy:1 + 2", "expected a name or a call"),
        (":app", "expected module:name"),
    ],
)
def test_a_bad_string_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ImportStringError, match=says):
        load(spec)
