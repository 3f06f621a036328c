"""What a stage costs while it runs: the peak memory and the CPU seconds of the notebook kernel.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): each stage runs under `PeakRSS`, whose
measurements fill the wall/CPU/peak-RSS columns of `{run_dir}/dryrun_stages.md` (the kernel that papermill starts,
and its workers, are children of this process).
"""
from __future__ import annotations

import threading


class PeakRSS:
    """Polls this process's descendants (the notebook kernel and its workers) in a thread: the peak of their summed
    RSS, and their CPU seconds (user + system; on a shared machine a better measure of the work than wall time)."""

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_sec(self) -> float:
        return float(sum(self._cpu.values()))

    def _sample(self) -> int:
        import psutil
        total = 0
        for child in psutil.Process().children(recursive=True):
            try:
                total += child.memory_info().rss
                t = child.cpu_times()
                self._cpu[child.pid] = t.user + t.system + t.children_user + t.children_system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
