"""Legacy rules in Flask's syntax, compiled once: exact matches, converted parameters."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.ledger.rules import compile_rule, fill_path, int_converter

ID = {"id": int_converter(1, 2**31 - 1)}


@pytest.mark.parametrize(
    ("rule", "path", "params"),
    [
        ("/products/<id:product_id>", "/products/5", {"product_id": 5}),
        ("/products/<id:product_id>", "/products/0", None),  # below the converter's minimum
        ("/products/<id:product_id>", "/products/1", {"product_id": 1}),  # its bounds
        ("/products/<id:product_id>", "/products/2147483647", {"product_id": 2**31 - 1}),
        ("/products/<id:product_id>", "/products/2147483648", None),
        ("/products/<id:product_id>", "/products/\u0663", None),  # an Arabic-Indic 3
        ("/products/<id:product_id>", "/products/5/", None),
        ("/products/<id:product_id>", "/products/x", None),
        ("/orders/<id:order_id>/cancel", "/orders/7/cancel", {"order_id": 7}),
        ("/orders/<id:order_id>/cancel", "/orders/7/cancelled", None),
        ("/products", "/products", {}),
        ("/products", "/productsX", None),
        ("/files/<path:name>", "/files/a/b.txt", {"name": "a/b.txt"}),
        ("/tags/<tag>", "/tags/a.b", {"tag": "a.b"}),
        ("/tags/<tag>", "/tags/a/b", None),
        ("/n/<int:n>", "/n/12", {"n": 12}),
    ],
)
def test_a_rule_matches_exactly_its_paths(
    rule: str, path: str, params: dict[str, Any] | None
) -> None:
    assert compile_rule(rule, ID).match(path) == params


def test_an_unknown_converter_is_refused_when_the_ledger_is_read() -> None:
    with pytest.raises(ValueError, match="no converter named 'slug'"):
        compile_rule("/posts/<slug:s>", ID)


def test_the_v2_path_is_filled_with_the_parameters() -> None:
    assert fill_path("/orders/{order_id}/cancel", {"order_id": 7}) == "/orders/7/cancel"
