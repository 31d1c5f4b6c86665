"""The readiness verdicts (gateway/ledger/readiness.py) from the team's thresholds, and the
recent window they read (gateway/observability/recent.py)."""

from __future__ import annotations

import pytest

from gateway.ledger.model import LedgerRoute, RouteState, RouteStatus
from gateway.ledger.readiness import ReadinessPolicy, Verdict, judge
from gateway.ledger.shadow import Counts
from gateway.observability.recent import Figures, RecentRequests
from tests.gateway.ledger_pair import same_path

POLICY = ReadinessPolicy(window_s=300, min_compared=200, min_parity=1.0, max_error_rate=0.01)
PAIRED = LedgerRoute(
    "notes.read", "GET", "/notes/<int:id>", "GET", "/notes/{id}", adapter=same_path
)
WATCHED_LONG = 3600.0


def _status(state: RouteState) -> RouteStatus:
    return RouteStatus(state=state)


def _figures(requests: int, errors: int = 0) -> Figures:
    return Figures(requests=requests, errors=errors, p50_s=0.001, p95_s=0.002)


@pytest.mark.parametrize("state", [RouteState.LEGACY, RouteState.SHADOW, RouteState.CANARY])
def test_enough_matched_comparisons_are_ready_to_cut_over(state: RouteState) -> None:
    verdict, why = judge(
        PAIRED, _status(state), {"legacy": _figures(500)}, Counts(matched=200), POLICY, 10
    )
    assert (verdict, why) == (Verdict.CUT_OVER, "200 of 200 answers matched")


def test_too_few_comparisons_are_not_ready_and_say_how_many() -> None:
    verdict, why = judge(
        PAIRED, _status(RouteState.SHADOW), {}, Counts(matched=199), POLICY, WATCHED_LONG
    )
    assert (verdict, why) == (Verdict.NOT_READY, "199 of 200 shadow comparisons")
    verdict, why = judge(PAIRED, _status(RouteState.LEGACY), {}, Counts(), POLICY, WATCHED_LONG)
    assert why == "0 of 200 shadow comparisons (shadow it)"


def test_one_mismatch_under_full_parity_is_not_ready() -> None:
    verdict, why = judge(
        PAIRED,
        _status(RouteState.SHADOW),
        {},
        Counts(matched=299, mismatched=1),
        POLICY,
        WATCHED_LONG,
    )
    assert verdict is Verdict.NOT_READY
    assert why == "parity 99.67 % < 100 % (1 mismatched)"
    lenient = POLICY.model_copy(update={"min_parity": 0.99})
    assert (
        judge(
            PAIRED, _status(RouteState.SHADOW), {}, Counts(matched=299, mismatched=1), lenient, 1
        )[0]
        is Verdict.CUT_OVER
    )


WRITE = LedgerRoute("notes.create", "POST", "/notes", "POST", "/notes", adapter=same_path)


def test_a_write_is_judged_on_its_canary_never_on_shadow_comparisons() -> None:
    verdict, why = judge(WRITE, _status(RouteState.LEGACY), {}, Counts(), POLICY, WATCHED_LONG)
    assert (verdict, why) == (
        Verdict.NOT_READY,
        "v2 served 0 of 200 canary requests; writes are never shadowed",
    )
    served = {"legacy": _figures(900), "v2": _figures(200)}
    verdict, why = judge(WRITE, _status(RouteState.CANARY), served, Counts(), POLICY, 1)
    assert (verdict, why) == (
        Verdict.CUT_OVER,
        "v2 served 200 canary requests within the error rate",
    )


def test_an_implementation_over_the_error_rate_is_not_ready() -> None:
    verdict, why = judge(
        PAIRED,
        _status(RouteState.CANARY),
        {"legacy": _figures(100), "v2": _figures(100, errors=2)},
        Counts(matched=500),
        POLICY,
        WATCHED_LONG,
    )
    assert (verdict, why) == (Verdict.NOT_READY, "v2 5xx rate 2.0 % > 1.0 %")


def test_v2_with_no_flask_traffic_for_a_whole_window_is_ready_to_retire() -> None:
    served = {"v2": _figures(40)}
    verdict, why = judge(PAIRED, _status(RouteState.V2), served, Counts(), POLICY, WATCHED_LONG)
    assert (verdict, why) == (Verdict.RETIRE, "no Flask traffic for 300 s")


def test_v2_with_flask_traffic_in_the_window_is_not_ready_to_retire() -> None:
    served = {"legacy": _figures(3), "v2": _figures(40)}
    verdict, why = judge(PAIRED, _status(RouteState.V2), served, Counts(), POLICY, WATCHED_LONG)
    assert (verdict, why) == (Verdict.NOT_READY, "Flask served 3 requests in the window")


def test_v2_watched_for_less_than_a_window_is_not_ready_to_retire() -> None:
    verdict, why = judge(PAIRED, _status(RouteState.V2), {}, Counts(), POLICY, 42)
    assert (verdict, why) == (Verdict.NOT_READY, "watched for 42 s of the 300 s window")


def test_a_route_without_adapter_is_not_ready_and_a_retired_one_is_retired() -> None:
    legacy_only = LedgerRoute("slow", "GET", "/slow", legacy_only="never moved")
    assert judge(legacy_only, _status(RouteState.LEGACY), {}, None, POLICY, 1) == (
        Verdict.NOT_READY,
        "never moved",
    )
    assert judge(PAIRED, _status(RouteState.RETIRED), {}, Counts(), POLICY, 1)[0] is (
        Verdict.RETIRED
    )


def test_the_window_keeps_the_last_minutes_per_implementation() -> None:
    now = [1000.0]
    recent = RecentRequests(clock=lambda: now[0])
    for milliseconds in range(1, 101):
        recent.record("legacy", "legacy", "GET", "/notes/{id}", 200, milliseconds / 1000)
    recent.record("legacy", "v2", "GET", "/notes/{id}", 503, 0.5)
    recent.record("legacy", "legacy", "GET", "/other", 200, 0.5)
    figures = recent.figures("legacy", "GET", "/notes/{id}", window_s=60)
    assert figures["legacy"] == Figures(requests=100, errors=0, p50_s=0.05, p95_s=0.095)
    assert figures["v2"] == Figures(requests=1, errors=1, p50_s=0.5, p95_s=0.5)
    now[0] += 61
    recent.record("legacy", "v2", "GET", "/notes/{id}", 200, 0.01)
    assert recent.figures("legacy", "GET", "/notes/{id}", window_s=60) == {
        "v2": Figures(requests=1, errors=0, p50_s=0.01, p95_s=0.01)
    }
    assert recent.watched_s() == 61
