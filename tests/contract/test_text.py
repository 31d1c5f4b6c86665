"""NUL in text: PostgreSQL cannot store it, so both stacks refuse it, on every database."""

from __future__ import annotations

import pytest

from tests.support import Stack, assert_error


@pytest.mark.parametrize("field", ["name", "email"])
def test_nul_in_customer_text_is_invalid(stack: Stack, unique: str, field: str) -> None:
    body = {"name": "Nul", "email": f"nul-{unique.lower()}@example.com"}
    body[field] = "\x00" + body[field]
    answer = stack.post("/customers", json=body, user="clerk")
    assert_error(stack, answer, stack.invalid_status)


def test_nul_in_a_product_name_is_invalid(stack: Stack, unique: str) -> None:
    body = {"sku": f"N-{unique}", "name": "Nul\x00", "price": "1.00", "stock": 1}
    assert_error(stack, stack.post("/products", json=body, user="admin"), stack.invalid_status)


@pytest.mark.parametrize(("path", "parameter"), [("/products", "q"), ("/customers", "email")])
def test_nul_in_a_search_term_is_invalid(stack: Stack, path: str, parameter: str) -> None:
    answer = stack.get(path, params={parameter: "a\x00b"}, user="viewer")
    assert_error(stack, answer, stack.invalid_status)
