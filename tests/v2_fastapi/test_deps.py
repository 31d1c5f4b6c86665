"""Integers in v2's URLs (ids, paging, filters) are written in plain digits, as documented."""

from __future__ import annotations

import pytest

from tests.support import Stack, assert_error


@pytest.mark.parametrize("spelling", ["3%20", "%203", "+3", "3_0", "3.5"])
@pytest.mark.parametrize(
    "template",
    ["/customers/{}", "/products/{}", "/orders?customer_id={}", "/products?limit={}"],
)
def test_other_spellings_of_an_integer_are_invalid(v2: Stack, template: str, spelling: str) -> None:
    # Customer and product 3 are seeded: read leniently, most of these would find them.
    assert_error(v2, v2.get(template.format(spelling), user="viewer"), 422)
