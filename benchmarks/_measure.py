"""Process measurements shared by the benchmark scripts (patron's and the peer's: this module
imports nothing beyond the standard library, so it runs in either virtual environment)."""

from __future__ import annotations

import resource

KIB_PER_MIB = 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB: VmHWM from /proc (Linux), which starts
    afresh at exec, unlike ru_maxrss, which a child inherits from its parent at fork."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_page_faults() -> int:
    """Minor page faults of this process so far (first touches of memory the system hands out)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


MIB = 1024 * 1024
SAMPLE_SECONDS = 0.05
"""How often :class:`TreeRSS` samples the resident sets."""


class TreeRSS:
    """Peak summed RSS (MiB) of a process and its descendants, by kind, sampled every
    ``every`` seconds (default :data:`SAMPLE_SECONDS`) in a thread while the ``with`` block runs (psutil, imported there: only
    the scripts that sample need it).

    ``pid``: the root (default this process), counted as ``root_kind``; its descendants, and
    ``extra`` processes with theirs (daemons outside the tree, e.g. a Spark cluster's), are counted
    under ``classify(process)`` (default ``root_kind``). ``peak[kind]`` is the largest sum seen
    per kind, ``total`` the largest sum over all kinds in one sample."""

    def __init__(self, pid: int | None = None, *, root_kind: str = "tree", classify=None, kinds: tuple[str, ...] = (),
                 extra: set[int] | frozenset[int] = frozenset(), every: float = SAMPLE_SECONDS) -> None:
        import os
        import threading

        self.pid = os.getpid() if pid is None else pid
        self.root_kind = root_kind
        self.classify = classify or (lambda proc: root_kind)
        self.extra = set(extra)
        self.every = every
        self.peak = dict.fromkeys((root_kind, *kinds), 0.0)
        self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _processes(self, root):
        import psutil

        found = {p.pid: p for p in root.children(recursive=True)}
        for pid in self.extra:
            try:
                daemon = psutil.Process(pid)
                for p in (daemon, *daemon.children(recursive=True)):
                    found.setdefault(p.pid, p)
            except psutil.Error:
                continue
        found.pop(root.pid, None)
        return list(found.values())

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            now = dict.fromkeys(self.peak, 0.0)
            try:
                now[self.root_kind] += root.memory_info().rss / MIB
                for proc in self._processes(root):
                    try:
                        kind = self.classify(proc)
                        now[kind] = now.get(kind, 0.0) + proc.memory_info().rss / MIB
                    except psutil.Error:
                        continue
            except psutil.Error:
                break
            for kind, value in now.items():
                self.peak[kind] = max(self.peak.get(kind, 0.0), value)
            self.total = max(self.total, sum(now.values()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd=None) -> dict:
    """Run ``cmd`` to completion (a non-zero exit stops the benchmark with its stderr): its
    wall-clock seconds, CPU seconds and peak RSS (MiB) from the kernel (``wait4`` on this child:
    user + system time and ``ru_maxrss``, the largest resident set of the process or of a child it
    waited for), the peak summed RSS of its process tree (:class:`TreeRSS`, MiB), and its stdout."""
    import os
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        with TreeRSS(proc.pid) as tree:
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / KIB_PER_MIB,
            "tree_peak_mb": tree.total, "stdout": stdout}
