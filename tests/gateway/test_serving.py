"""How a serving process is set up: its garbage collector (gateway/serving.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.serving import YOUNG_GENERATION_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The test process's collector as it was: settling is meant for a serving process."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_start_up_built_and_collects_less_often() -> None:
    built_at_start_up = {"routes": ["/v2/products/{id}"]}
    before = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() > 0
    # Out of the collector's sight: a full collection no longer goes through it.
    assert not any(found is built_at_start_up for found in gc.get_objects())
    young, middle, oldest = gc.get_threshold()
    assert young == YOUNG_GENERATION_THRESHOLD
    # The older generations keep their thresholds.
    assert (middle, oldest) == before[1:]
