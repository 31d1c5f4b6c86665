"""What the server under test and the machine's cores used while load ran (psutil).

The server is the process the runner started and every process under it (uvicorn's or
gunicorn's workers), summed: what the machine had to hold and run for it. Pages that
forked workers share are counted once per process, as `ps` counts them. Pinning keeps the
server and Locust apart, but not other processes off the server's core: the cores' busy
time beside the server's own CPU time says when an arm was disturbed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

import psutil

from loadtests.schema import CpuUsage, ServerRss

MIB = 2**20
T = TypeVar("T")


def _over_tree(pid: int, read: Callable[[psutil.Process], float]) -> tuple[float, int]:
    """`read` summed over `pid` and its descendants, and how many processes were read."""
    root = psutil.Process(pid)
    total, count = 0.0, 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total, count = total + read(process), count + 1
        except psutil.Error:
            continue  # a worker that ended between the listing and the reading
    return total, count


def tree_rss(pid: int) -> tuple[float, int]:
    """Resident bytes of `pid` and its descendants, and how many processes that was."""
    return _over_tree(pid, lambda process: process.memory_info().rss)


def tree_cpu_s(pid: int) -> float:
    """User and system seconds of `pid` and its live descendants."""
    return _over_tree(pid, lambda process: sum(process.cpu_times()[:2]))[0]


def children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended (and were waited for)."""
    times = psutil.Process().cpu_times()
    return times.children_user + times.children_system


@dataclass(frozen=True)
class CpuSample:
    cores: dict[int, tuple[float, float]]  # core -> (busy, total) seconds since boot
    server_s: float | None


def sample(server_pid: int | None) -> CpuSample | None:
    """A snapshot, or None where the figures cannot be read."""
    try:
        cores = {
            core: (sum(t) - t.idle - getattr(t, "iowait", 0.0), sum(t))
            for core, t in enumerate(psutil.cpu_times(percpu=True))
        }
        return CpuSample(cores, tree_cpu_s(server_pid) if server_pid is not None else None)
    except psutil.Error:
        return None


def _share(before: CpuSample, after: CpuSample, cores: list[int]) -> tuple[float, float]:
    present = [core for core in cores if core in after.cores and core in before.cores]
    busy = sum(after.cores[c][0] - before.cores[c][0] for c in present)
    total = sum(after.cores[c][1] - before.cores[c][1] for c in present)
    return (busy / total if total else 0.0), total


def usage(
    before: CpuSample | None,
    after: CpuSample | None,
    server_cores: tuple[int, ...],
    loadgen: tuple[int, ...],
) -> CpuUsage | None:
    """Busy shares of the server's and the load generator's cores (none: all) between two
    samples."""
    if before is None or after is None:
        return None
    every = tuple(sorted(os.sched_getaffinity(0)))
    cores = list(server_cores or every)
    busy, total = _share(before, after, cores)
    own: dict[str, float] = {}
    if before.server_s is not None and after.server_s is not None and total:
        used = after.server_s - before.server_s
        itself = min(used / total, busy)
        own = {
            "server_itself": round(itself, 3),
            "others_on_server_cores": round(busy - itself, 3),
            "server_cpu_s": round(used, 2),
        }
    return CpuUsage(
        server_cores=cores,
        server_cores_busy=round(busy, 3),
        loadgen_cores_busy=round(_share(before, after, list(loadgen or every))[0], 3),
        **own,
    )


class Sampler(Generic[T]):
    """Calls `read` every `every_s` on a thread of its own until the `with` block ends.

    A spike shorter than the interval can fall between two samples: a peak read from them
    is a lower bound, steady for what a server holds under a sustained load.
    """

    def __init__(self, read: Callable[[], T] | None, every_s: float) -> None:
        self.read, self.every_s = read, every_s
        self.samples: list[T] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        assert self.read is not None
        while True:
            with suppress(psutil.Error):  # the server is gone: the run reports that elsewhere
                self.samples.append(self.read())
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> Self:
        if self.read is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class PeakRss(Sampler[tuple[float, int]]):
    """The resident bytes of the server's process tree, and how many processes, sampled."""

    def __init__(self, pid: int | None, every_s: float = 0.2) -> None:
        super().__init__(None if pid is None else lambda: tree_rss(pid), every_s)

    @property
    def peak_bytes(self) -> float:
        return max(self.samples, default=(0.0, 0))[0]

    def summary(self) -> ServerRss | None:
        """None when no server was sampled."""
        if not self.samples:
            return None
        peak, processes = max(self.samples)
        return ServerRss(
            peak_mib=round(peak / MIB, 1),
            processes=processes,
            samples=len(self.samples),
            every_s=self.every_s,
        )
