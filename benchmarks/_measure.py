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
