"""Matching legacy requests against the ledger's rules, written in Flask's rule syntax.

A rule such as `/products/<id:product_id>` is compiled once into a regular expression;
each placeholder's converter gives the pattern of its segment and turns the text into the
value the v2 path is filled with. Werkzeug's own converters (`string`, `int`, `path`,
`uuid`) are here; a team registers its custom ones in the ledger (`Ledger.converters`),
as it does in its Flask app (`app.url_map.converters`). The gateway imports no Flask.

A request whose path fits a rule's pattern but whose value its converter refuses (an id
out of range) matches nothing: it goes to the legacy app, which answers it as it always has.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final


class Refused(ValueError):
    """A converter's answer for a value it does not take."""


@dataclass(frozen=True)
class Converter:
    """One placeholder type: the pattern of its text, and the value the text stands for."""

    pattern: str
    parse: Callable[[str], Any] = str


def _int(text: str) -> int:
    return int(text)


def int_converter(minimum: int | None = None, maximum: int | None = None) -> Converter:
    """Werkzeug's `int` with its `min`/`max`: ASCII digits (Python's `\\d` is Unicode's)."""

    def parse(text: str) -> int:
        value = int(text)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Refused(text)
        return value

    return Converter(r"[0-9]+", parse)


STANDARD_CONVERTERS: Final[Mapping[str, Converter]] = {
    "default": Converter(r"[^/]+"),
    "string": Converter(r"[^/]+"),
    "int": Converter(r"[0-9]+", _int),
    "path": Converter(r"[^/].*?"),
    "uuid": Converter(
        r"[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}", uuid.UUID
    ),
}

# `<name>` or `<converter:name>`; converter arguments (`<int(min=1):n>`) are not read:
# a converter with arguments is registered under a name of its own.
_PLACEHOLDER: Final = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class CompiledRule:
    rule: str
    regex: re.Pattern[str]
    converters: tuple[tuple[str, Converter], ...]

    def match(self, path: str) -> dict[str, Any] | None:
        """The rule's parameters in `path`, converted; None when the path is not the rule's."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        params: dict[str, Any] = {}
        for name, converter in self.converters:
            try:
                params[name] = converter.parse(found.group(name))
            except ValueError:
                return None
        return params


def compile_rule(rule: str, converters: Mapping[str, Converter]) -> CompiledRule:
    """`rule` as a regular expression over the path under the legacy prefix."""
    known = {**STANDARD_CONVERTERS, **converters}
    pattern: list[str] = []
    used: list[tuple[str, Converter]] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(rule):
        pattern.append(re.escape(rule[position : placeholder.start()]))
        converter_name = placeholder["converter"] or "default"
        converter = known.get(converter_name)
        if converter is None:
            raise ValueError(f"rule {rule!r}: no converter named {converter_name!r}")
        name = placeholder["name"]
        pattern.append(f"(?P<{name}>{converter.pattern})")
        used.append((name, converter))
        position = placeholder.end()
    pattern.append(re.escape(rule[position:]))
    return CompiledRule(rule, re.compile("".join(pattern)), tuple(used))


def fill_path(template: str, params: Mapping[str, Any]) -> str:
    """`/products/{product_id}` with the values of `params`."""
    return template.format_map(params)
