"""How long the fuzz tests run: a quick, fixed set in `make test`, a long random one in `make fuzz`.

`GATEWAY_FUZZ_EXAMPLES` (set by `make fuzz`) raises the examples per test and lets Hypothesis
draw new inputs each run, keeping what failed in its example database (.hypothesis/, ignored
by git) to try first next time. Without it the inputs are derandomized: the same every run,
so the default suite cannot be flaky.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = os.environ.get("GATEWAY_FUZZ_EXAMPLES")


def fuzz_settings(*, default_examples: int) -> settings:
    # No deadline: a first request pays for connections and a write may wait on a lock.
    # The app under test is built once per test, as a server would be: it is meant to
    # outlive each input, so a function-scoped fixture is right here.
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    }
    if FUZZ_EXAMPLES is None:
        return settings(max_examples=default_examples, derandomize=True, **common)
    return settings(max_examples=int(FUZZ_EXAMPLES), derandomize=False, **common)
