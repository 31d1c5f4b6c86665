"""How busy the cores were while an arm ran, and how much of that was the server itself.

Arms run one after the other on a machine that other work may share. Pinning keeps the
server and Locust apart, but not other processes off the server's core: this measures
them (from /proc, Linux only) so that the report can say when an arm was disturbed.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
# /proc/stat fields after "cpuN": user nice system idle iowait irq softirq steal ...
_IDLE_FIELDS = (3, 4)


@dataclass(frozen=True)
class CpuSample:
    cores: dict[int, tuple[int, int]]  # core -> (busy, total) jiffies since boot
    server: int | None  # jiffies the server's process group has used


def children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended (and were waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_cores(spec: str | None) -> list[int]:
    """A taskset list (`"1"`, `"1,3"`, `"1-3"`) as core numbers; all cores for None."""
    if spec is None:
        return sorted(os.sched_getaffinity(0))
    cores: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cores += range(int(first), int(last or first) + 1)
    return cores


def _core_times() -> dict[int, tuple[int, int]]:
    times = {}
    for line in (PROC / "stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(value) for value in fields]
            idle = sum(values[i] for i in _IDLE_FIELDS if i < len(values))
            times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times


def _group_jiffies(pgid: int) -> int:
    """User and system time of every live process in the group."""
    total = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total


def sample(server_pgid: int | None) -> CpuSample | None:
    """A snapshot, or None where /proc is not there to read."""
    try:
        server = _group_jiffies(server_pgid) if server_pgid is not None else None
        return CpuSample(_core_times(), server)
    except (OSError, ValueError, IndexError):
        return None


def _share(before: CpuSample, after: CpuSample, cores: list[int]) -> tuple[float, int]:
    busy = sum(after.cores[c][0] - before.cores[c][0] for c in cores if c in after.cores)
    total = sum(after.cores[c][1] - before.cores[c][1] for c in cores if c in after.cores)
    return (busy / total if total else 0.0), total


def usage(
    before: CpuSample | None, after: CpuSample | None, server_cores: str | None, loadgen: str | None
) -> dict[str, Any] | None:
    """Busy shares (0-1) of the server's and the load generator's cores over the arm."""
    if before is None or after is None:
        return None
    cores = parse_cores(server_cores)
    busy, total = _share(before, after, cores)
    result: dict[str, Any] = {
        "server_cores": cores,
        "server_cores_busy": round(busy, 3),
        "loadgen_cores_busy": round(_share(before, after, parse_cores(loadgen))[0], 3),
    }
    if before.server is not None and after.server is not None and total:
        used = after.server - before.server
        own = min(used / total, busy)
        result |= {"server_itself": round(own, 3), "others_on_server_cores": round(busy - own, 3)}
        result["server_cpu_s"] = round(used / os.sysconf("SC_CLK_TCK"), 2)
    return result
