"""A ramp to saturation: users step up to `--users` over `--run-time` in `--ramp-steps` steps.

Load it beside the flows, with the users sending back to back (no `--user-rps`):

    locust -f loadtests/locustfile.py,loadtests/ramp_shape.py --headless \
        -u 200 -r 50 -t 2m --ramp-steps 5 V2User

Each step holds its user count long enough to read the rate it sustains; the step with the
highest request rate is what the stack can take. With `--measure-s` (what the comparison
runner passes) the first step also covers the warm-up and the steps share the measured time.

It lives in a file of its own because Locust uses any shape class it finds, and the
fixed-rate mode must not get one.
"""

from __future__ import annotations

import time
from typing import Any

from locust import LoadTestShape, events

from loadtests import warmup

DEFAULT_STEPS = 5
# Without --run-time (the web UI) each step lasts this long and the last one holds.
DEFAULT_STEP_S = 30.0


def _add_options(parser: Any) -> None:
    parser.add_argument(
        "--ramp-steps", type=int, default=DEFAULT_STEPS, help="user-count steps up to --users"
    )


warmup.listen(events.init_command_line_parser, _add_options)


def step_users(peak: int, steps: int, elapsed_s: float, step_s: float) -> int:
    """The user count at `elapsed_s`: step k of n runs peak * k / n users (at least one)."""
    step = min(int(elapsed_s // step_s), steps - 1)
    return max(1, round(peak * (step + 1) / steps))


class StepRamp(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None, "Locust sets the runner before the first tick"
        options: Any = self.runner.environment.parsed_options
        peak = int(options.num_users or 1)
        steps = max(1, int(getattr(options, "ramp_steps", DEFAULT_STEPS)))
        spawn_rate = float(options.spawn_rate or peak)
        measure = float(getattr(options, "measure_s", 0.0) or 0.0)
        if measure > 0:
            # Hold the first step through the warm-up; the warm-up ends the run itself.
            elapsed = warmup.seconds_since_over()
            return step_users(peak, steps, elapsed, measure / steps), spawn_rate
        run_time = float(options.run_time or 0)
        elapsed = time.perf_counter() - self.start_time
        if run_time and elapsed >= run_time:
            return None
        step_s = run_time / steps if run_time else DEFAULT_STEP_S
        return step_users(peak, steps, elapsed, step_s), spawn_rate
