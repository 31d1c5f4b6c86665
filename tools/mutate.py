"""Mutation testing of the modules where a silent mistake costs most (`make mutate`).

    python tools/mutate.py [--minutes 25] [--group NAME ...] [--keep DIR]

Cosmic Ray changes one thing at a time in a module (a comparison, a number, a condition,
an `except` clause...) and runs the group's tests against it: a mutant the tests let pass
is a mistake nobody would notice. Each group names its modules and only the fast tests
that exercise them, on SQLite. Mutants are written into a copy of the committed tree (and
the work tree's changes), never into the tree itself, so stopping it half-way leaves
nothing changed. The run stops when `--minutes` are up; what ran is reported, each group's
surviving mutants as diffs, and the mutants not reached are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Per mutant: a test run that takes longer than this is counted as killed (a hang).
MUTANT_TIMEOUT_S = 120


@dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


GROUPS = [
    Group("money", ("shop_core/money.py",), ("tests/contract/test_products.py",)),
    Group(
        "inventory",
        ("shop_core/inventory.py",),
        ("tests/contract/test_orders.py", "tests/contract/test_concurrency.py"),
    ),
    Group(
        "tokens",
        ("shop_core/security.py",),
        (
            "tests/shop_core/test_security.py",
            "tests/contract/test_auth.py",
            "tests/contract/test_token_users.py",
            "tests/contract/test_login_throttle.py",
        ),
    ),
    Group(
        "body-limit",
        ("gateway/body_limit.py",),
        (
            "tests/gateway/test_body_limit.py",
            "tests/gateway/test_app.py::test_bodies_over_the_limit_get_413_on_both_stacks",
            "tests/gateway/test_security.py::test_a_body_over_the_limit_gets_413_with_the_same_headers",
            "tests/gateway/test_legacy_mount.py::test_a_chunked_body_reaches_flask_whole",
            "tests/gateway/test_slow_clients.py",
            "-k",
            "body or 413",
        ),
    ),
    Group(
        "mount",
        ("gateway/legacy_mount.py", "gateway/wsgi_responder.py"),
        ("tests/gateway/test_legacy_mount.py", "tests/gateway/test_legacy_pool.py"),
    ),
    Group(
        "ledger",
        ("gateway/ledger/rules.py", "gateway/ledger/dispatch.py"),
        (
            "tests/gateway/test_ledger_rules.py",
            "tests/contract/test_ledger_serving.py",
            "tests/gateway/test_shadow_serving.py",
            "tests/gateway/test_canary_serving.py",
        ),
    ),
    Group(
        "adapters",
        ("gateway/ledger/adapters.py",),
        (
            # The legacy contract served by v2 through the adapters (the `legacy-on-v2`
            # runs) and the ledger's own, without the slow fuzz and load tests.
            "tests/contract",
            "-k",
            "(legacy-on-v2 or ledger) and not fuzz and not under_load and not concurrency"
            " and not throttle",
        ),
    ),
]
GROUP_NAMES = [group.name for group in GROUPS]

# The mutations that make a plausible slip: a boundary, a negation, a sign, a constant, a
# swallowed or swapped exception, a skipped loop. Cosmic Ray's other operators (every
# binary operator into every other, shifts and bitwise ones, comparisons into `is`,
# variables swapped or inserted) mostly make mutants no reader would mistake for code.
OPERATORS = (
    "ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv)",
    "ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Is_IsNot|IsNot_Is)",
    "ReplaceComparisonOperator_(Lt_GtE|GtE_Lt|Gt_LtE|LtE_Gt)",
    "ReplaceUnaryOperator_(USub_UAdd|Delete_Not)",
    "AddNot",
    "ReplaceTrueWithFalse",
    "ReplaceFalseWithTrue",
    "ReplaceAndWithOr",
    "ReplaceOrWithAnd",
    "ReplaceBreakWithContinue",
    "ExceptionReplacer",
    "NumberReplacer",
    "RemoveDecorator",
    "ZeroIterationForLoop",
)


def _test_command(group: Group) -> list[str]:
    pytest = [str(BIN / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    return [*pytest, "--timeout", "60", *group.tests]


def _config(group: Group) -> str:
    # Cosmic Ray splits the command as a shell would: a `-k` expression stays one argument.
    command = json.dumps(shlex.join(_test_command(group)))  # a TOML basic string
    modules = ", ".join(f'"{module}"' for module in group.modules)
    exclude = f"^(?!core/({'|'.join(OPERATORS)})$)"
    return "\n".join(
        [
            "[cosmic-ray]",
            f"module-path = [{modules}]",
            f"timeout = {MUTANT_TIMEOUT_S}",
            "excluded-modules = []",
            f"test-command = {command}",
            "",
            "[cosmic-ray.distributor]",
            'name = "local"',
            "",
            "[cosmic-ray.filters.operators-filter]",
            f"exclude-operators = ['{exclude}']",
            "",
        ]
    )


def _copy_tree(target: Path) -> None:
    """The files git knows (committed, changed or new, not ignored) copied to `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _run(command: list[str], cwd: Path, env: dict[str, str], deadline: float) -> bool:
    """Run `command` until it ends or the deadline passes (then stop it): True if it ended."""
    with subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True) as process:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return False


@dataclass
class Outcome:
    group: str
    total: int = 0
    skipped: int = 0
    killed: int = 0
    survived: int = 0
    pending: int = 0
    survivors: tuple[str, ...] = ()


def _outcome(group: Group, session: Path) -> Outcome:
    """Counts and surviving diffs, read from Cosmic Ray's session database."""
    outcome = Outcome(group.name)
    with sqlite3.connect(session) as db:
        outcome.total = db.execute("SELECT count(*) FROM work_items").fetchone()[0]
        rows = db.execute(
            "SELECT r.worker_outcome, r.test_outcome, r.diff FROM work_results r"
        ).fetchall()
    survivors = []
    for worker, test, diff in rows:
        if worker == "SKIPPED":
            outcome.skipped += 1
        elif worker == "NORMAL" and test == "SURVIVED":
            outcome.survived += 1
            survivors.append(diff)
        else:  # killed by a test, or by the timeout (a hang), or the mutant did not import
            outcome.killed += 1
    outcome.pending = outcome.total - len(rows)
    outcome.survivors = tuple(survivors)
    return outcome


def _mutate(
    group: Group, tree: Path, sessions: Path, env: dict[str, str], deadline: float
) -> Outcome | None:
    # The tests must pass on the code as it is, or every mutant would look killed.
    baseline = subprocess.run(_test_command(group), cwd=tree, env=env, check=False)
    if baseline.returncode != 0:
        print(f"== {group.name}: its tests fail on the unchanged code; no mutant tried")
        return None
    config = sessions / f"{group.name}.toml"
    config.write_text(_config(group))
    session = sessions / f"{group.name}.sqlite"
    cosmic = str(BIN / "cosmic-ray")
    subprocess.run([cosmic, "init", str(config), str(session)], cwd=tree, env=env, check=True)
    filters = str(BIN / "cr-filter-operators")
    subprocess.run([filters, str(session), str(config)], cwd=tree, env=env, check=True)
    pragma = str(BIN / "cr-filter-pragma")
    subprocess.run([pragma, str(session)], cwd=tree, env=env, check=True)
    _run([cosmic, "exec", str(config), str(session)], tree, env, deadline)
    return _outcome(group, session)


def _print(outcome: Outcome) -> None:
    tried = outcome.killed + outcome.survived
    print(
        f"== {outcome.group}: {tried} mutants tried of {outcome.total - outcome.skipped}"
        f" ({outcome.pending} not reached): {outcome.killed} killed,"
        f" {outcome.survived} survived"
    )
    for diff in outcome.survivors:
        print(diff.rstrip())
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="time bound of the run")
    parser.add_argument("--group", nargs="+", choices=GROUP_NAMES, help="these groups only")
    parser.add_argument("--keep", type=Path, help="keep the sessions (Cosmic Ray's) here")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    groups = [group for group in GROUPS if not args.group or group.name in args.group]
    env = {key: value for key, value in os.environ.items() if key != "GATEWAY_TEST_DATABASE_URL"}
    outcomes = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="mutate-") as scratch:
        tree = Path(scratch) / "tree"
        _copy_tree(tree)
        # The copy's modules, not the installed (editable) ones, are the ones imported.
        env["PYTHONPATH"] = str(tree)
        sessions = args.keep or Path(scratch) / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        for group in groups:
            if time.monotonic() >= deadline:
                print(f"== {group.name}: not started, the {args.minutes:g} minutes are up")
                continue
            outcome = _mutate(group, tree, sessions.resolve(), env, deadline)
            if outcome is None:
                failed = True
                continue
            _print(outcome)
            outcomes.append(outcome)
    survived = sum(outcome.survived for outcome in outcomes)
    pending = sum(outcome.pending for outcome in outcomes)
    print(f"survivors: {survived}; mutants not reached within the time bound: {pending}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
