"""Import strings, read the way Flask's `--app` reads them.

- `module:name` names an object; when that object is a plain function (a factory such
  as `create_app`), it is called without arguments to make the app;
- `module:name(...)` calls it with the literal arguments given (`create_app("prod")`);
- `module` alone looks for `app`, then for `create_app`.

The working directory is importable, as it is for `flask --app` and `uvicorn`: a team runs
`gateway serve --legacy app:create_app` where its code is. Errors say which string failed
and why, so that a typo on the command line reads well.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from typing import Any


class ImportStringError(ValueError):
    """The import string is malformed, or does not name what it should."""


def load(spec: str, *, call_factories: bool = True) -> Any:
    """The object `spec` names; see the module docstring."""
    module_name, _, target = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if not module_name:
        raise ImportStringError(f"{spec!r}: expected module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportStringError(f"{spec!r}: cannot import {module_name!r}: {exc}") from exc
    if not target:
        for default in ("app", "create_app"):
            if hasattr(module, default):
                return _resolve(spec, getattr(module, default), call_factories)
        raise ImportStringError(f"{spec!r}: the module has neither app nor create_app")
    name, call = _parse_target(spec, target)
    try:
        found = getattr(module, name)
    except AttributeError as exc:
        raise ImportStringError(f"{spec!r}: {module_name} has no {name!r}") from exc
    if call is None:
        return _resolve(spec, found, call_factories)
    args, kwargs = call
    return found(*args, **kwargs)


def _resolve(spec: str, found: Any, call_factories: bool) -> Any:
    if call_factories and inspect.isfunction(found):
        made = found()
        if made is None:
            raise ImportStringError(f"{spec!r}: the factory returned None")
        return made
    return found


def _parse_target(spec: str, target: str) -> tuple[str, tuple[list[Any], dict[str, Any]] | None]:
    try:
        expression = ast.parse(target.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ImportStringError(f"{spec!r}: cannot read {target!r}") from exc
    if isinstance(expression, ast.Name):
        return expression.id, None
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
        try:
            args = [ast.literal_eval(arg) for arg in expression.args]
            kwargs = {
                str(keyword.arg): ast.literal_eval(keyword.value) for keyword in expression.keywords
            }
        except ValueError as exc:
            raise ImportStringError(f"{spec!r}: arguments must be literals") from exc
        return expression.func.id, (args, kwargs)
    raise ImportStringError(f"{spec!r}: expected a name or a call, like create_app()")
