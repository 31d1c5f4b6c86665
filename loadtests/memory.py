"""The server's resident memory while an arm runs: sampled in a thread, the peak kept.

The server is the process the runner started and every process under it (uvicorn's or
gunicorn's workers), summed: what the machine had to hold for that arm. Pages that forked
workers share are counted once per process, as `ps` counts them.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import psutil

SAMPLE_EVERY_S = 0.2
MIB = 2**20


def tree_rss(root: psutil.Process) -> tuple[int, int]:
    """Resident bytes of `root` and its descendants, and how many processes that was."""
    total, count = 0, 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
            count += 1
        except psutil.Error:
            continue  # a worker that ended between the listing and the reading
    return total, count


class PeakRss:
    """Samples the server's tree every SAMPLE_EVERY_S until the `with` block ends.

    A spike shorter than the interval can fall between two samples: the peak is a lower
    bound, steady for what a server holds under a sustained load.
    """

    def __init__(self, pid: int | None) -> None:
        self._root: psutil.Process | None = None
        if pid is not None:
            try:
                self._root = psutil.Process(pid)
            except psutil.Error:
                self._root = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_bytes = 0
        self.processes = 0
        self.samples = 0

    def _sample(self) -> None:
        assert self._root is not None
        try:
            total, count = tree_rss(self._root)
        except psutil.Error:
            return  # the server itself is gone: the run reports that elsewhere
        self.samples += 1
        if total > self.peak_bytes:
            self.peak_bytes, self.processes = total, count

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._sample()

    def __enter__(self) -> PeakRss:
        if self._root is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict[str, Any] | None:
        """`{peak_mib, processes, samples}`, or None when no server was sampled."""
        if not self.samples:
            return None
        return {
            "peak_mib": round(self.peak_bytes / MIB, 1),
            "processes": self.processes,
            "samples": self.samples,
            "every_s": SAMPLE_EVERY_S,
        }
