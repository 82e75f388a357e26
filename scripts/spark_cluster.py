"""A Spark standalone cluster on this machine, from pyspark's own distribution (nothing downloaded).

    .venv/bin/python scripts/spark_cluster.py start [--workers 2] [--cores 1] [--memory 1g] [--dir DIR]
    .venv/bin/python scripts/spark_cluster.py status [--dir DIR]
    .venv/bin/python scripts/spark_cluster.py stop [--dir DIR]

``start`` runs ``$SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master`` on 127.0.0.1
(port 7077 when it is free, else a free port) and ``--workers`` times
``org.apache.spark.deploy.worker.Worker spark://127.0.0.1:PORT`` (``--cores`` cores and ``--memory``
for executors each), with ``SPARK_HOME`` the installed pyspark package (which ships ``bin/spark-class``
and the jars, but not ``sbin/start-master.sh``). It waits until every worker is registered (the master's
JSON status at ``http://127.0.0.1:UI/json/``), prints the master URL and leaves the daemons running;
logs, the workers' work folders (executor logs) and Spark's local folders (shuffle files) are under
``--dir`` (default: a new temporary folder; ``state.json`` there names the processes). ``stop`` ends
them; ``status`` prints the master's view.

Point patron at it with ``PATRON_SPARK_MASTER=spark://127.0.0.1:7077`` or
``spark_session(master="spark://127.0.0.1:7077")``. Executors run in their own JVMs and start the
driver's Python (``PYSPARK_PYTHON``; :func:`patron.data.engines.spark.spark_session` sets it to the
driver's interpreter), so on one machine they find patron where the driver does.

From Python (tests, benchmarks), :class:`StandaloneCluster` is a context manager::

    with StandaloneCluster(Path(tmp)) as cluster:
        spark = spark_session(cluster.master_url)

Each daemon is its own process group (the worker's executors belong to the worker's group), so stopping
kills whole groups: SIGTERM, then SIGKILL after a grace period; the executors' Python daemons, which
PySpark puts in groups of their own, are found by parentage before the kill and ended after it. Started
from Python with ``die_with_parent=True`` (the default there), the daemons also get SIGTERM from the
kernel when the process that started them dies, so a killed test run leaves no JVM behind.

Ports: the master's RPC port is 7077 if free, else a free one; the web UIs get free ports; the master's
REST submission server is off; ``spark.port.maxRetries=0``, so a port taken between the check and the
bind makes the daemon exit (and the start is retried on other ports) rather than move silently to
another port. Two clusters started at the same time therefore never share a master.

Only the standard library is imported, so this file runs with any Python that can find pyspark.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_MASTER_PORT = 7077
"""The standalone master's usual RPC port, used when it is free."""

LOOPBACK = "127.0.0.1"

DAEMON_MEMORY = "256m"
"""Heap of the master and worker daemons themselves (they only schedule; executors get ``memory``)."""

START_TIMEOUT_SECONDS = 240.0
"""How long to wait for the master and the workers on a loaded machine (about 15-30 s when calm)."""

STOP_GRACE_SECONDS = 15.0
"""How long a daemon's process group gets after SIGTERM before SIGKILL."""

START_ATTEMPTS = 3
"""Tries at starting the master on fresh ports when a port was taken between check and bind."""

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process receives when its parent thread dies (Linux)."""


def spark_home() -> Path:
    """The installed pyspark package folder, which holds ``bin/spark-class`` and ``jars/``."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyspark is not installed in this Python (pip install 'patron[spark]')")
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").exists():
        raise RuntimeError(f"{home} has no bin/spark-class: not a pyspark distribution with its launch scripts")
    return home


def free_port() -> int:
    """A TCP port on the loopback interface that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_spark_daemon(pid: int) -> bool:
    """Whether ``pid`` is still a process of a Spark daemon (guards against a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"org.apache.spark.deploy.master.Master" in cmdline or b"org.apache.spark.deploy.worker.Worker" in cmdline


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, ppid, pgrp) of every process, from /proc (Linux)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command: state, ppid, pgrp, ...
        except (OSError, IndexError):
            continue
        table[int(stat.parent.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def group_members(pgids: set[int]) -> list[int]:
    """Live (not zombie) processes whose process group is one of ``pgids``."""
    return [pid for pid, (state, _, pgrp) in _proc_table().items() if state != "Z" and pgrp in pgids]


def process_tree(roots: set[int]) -> list[int]:
    """Live (not zombie) processes among ``roots`` and their descendants. PySpark's Python daemon
    puts itself (and the Python workers it forks) in a process group of its own, so an executor's
    Python workers are found by parentage, not by group."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if table[pid][0] != "Z":
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def kill_group(pgid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group ``pgid``, then SIGKILL it if anything of it is left after ``grace`` s.
    (A zombie left for the caller to reap does not count as left.)"""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_members({pgid}):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class StandaloneCluster:
    """A standalone master and ``workers`` workers on 127.0.0.1 (see the module docstring).

    Parameters
    ----------
    root
        Folder for logs (``logs/``), work folders (``work-N/``, executor logs per application) and
        Spark's local folders (``local/``, shuffle and spill files); created if missing.
    workers, cores, memory
        Workers, cores each offers, memory each offers to executors (a JVM size such as ``1g``).
    master_port
        Preferred RPC port of the master; a free port is used when it is taken.
    java_options
        Extra JVM options of the daemons (``SPARK_DAEMON_JAVA_OPTS``).
    die_with_parent
        Ask the kernel to SIGTERM each daemon when the process that started it dies (Linux).
    """

    def __init__(self, root: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g",
                 master_port: int = DEFAULT_MASTER_PORT, java_options: str = "", die_with_parent: bool = True,
                 timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.root = Path(root).resolve()
        self.n_workers, self.cores, self.memory = workers, cores, memory
        self.preferred_port, self.java_options = master_port, java_options
        self.die_with_parent, self.timeout = die_with_parent, timeout
        self.home = spark_home()
        self.master_url = ""
        self.ui_port = 0
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ start
    def _env(self) -> dict[str, str]:
        opts = f"-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false {self.java_options}".strip()
        return {**os.environ, "SPARK_HOME": str(self.home), "SPARK_LOCAL_IP": LOOPBACK,
                "SPARK_LOCAL_DIRS": str(self.root / "local"), "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
                "SPARK_DAEMON_JAVA_OPTS": opts, "SPARK_CONF_DIR": str(self.root / "conf"),
                "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / "logs" / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen(
                [str(self.home / "bin" / "spark-class"), *args], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self._env(), cwd=self.root,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
                start_new_session=not self.die_with_parent)
        finally:
            log.close()
        self.processes[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last ``lines`` lines of a daemon's log (``master``, ``worker-1``, ...)."""
        path = self.root / "logs" / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def state(self) -> dict[str, Any]:
        """The master's JSON status (``workers``, ``aliveworkers``, ``activeapps``, ...)."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json/", timeout=5) as reply:
            return json.loads(reply.read())

    def _wait(self, ready, what: str, names: list[str]) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for name in names:
                if self.processes[name].poll() is not None:
                    raise _Exited(name, self.log_tail(name))
            try:
                state = self.state()
            except (OSError, ValueError):
                state = None
            if state is not None and ready(state):
                return state
            time.sleep(0.3)
        raise RuntimeError(f"{what} not ready after {self.timeout:.0f} s; master log:\n{self.log_tail('master')}")

    def start(self) -> StandaloneCluster:
        """Start the master and the workers; return once every worker is registered."""
        for sub in ("logs", "local", "conf"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._start_master()
            for i in range(1, self.n_workers + 1):
                work = self.root / f"work-{i}"
                work.mkdir(exist_ok=True)
                self._spawn(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", LOOPBACK,
                            "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(work),
                            "--webui-port", str(free_port()), self.master_url)
            names = ["master", *(f"worker-{i}" for i in range(1, self.n_workers + 1))]
            self._wait(lambda s: s.get("aliveworkers", 0) >= self.n_workers, f"{self.n_workers} workers", names)
        except BaseException:
            self.stop()
            raise
        self.write_state()
        return self

    def _start_master(self) -> None:
        port = self.preferred_port if port_is_free(self.preferred_port) else free_port()
        for attempt in range(START_ATTEMPTS):
            self.ui_port = free_port()
            self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                        "--port", str(port), "--webui-port", str(self.ui_port))
            try:
                state = self._wait(lambda s: s.get("status") == "ALIVE", "the master", ["master"])
            except _Exited as exited:  # a port was taken between the check and the bind
                if attempt == START_ATTEMPTS - 1:
                    raise RuntimeError(f"the Spark master exited:\n{exited.log}") from None
                port = free_port()
                continue
            self.master_url = state["url"]
            return

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """End every daemon's process group (the worker's executors are in it), then whatever else
        descended from the daemons (the executors' Python daemons and workers, which PySpark puts
        in groups of their own)."""
        descendants = process_tree({proc.pid for proc in self.processes.values()})
        for name, proc in reversed(list(self.processes.items())):
            kill_group(proc.pid)
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            del self.processes[name]
        _end_processes(descendants)
        (self.root / "state.json").unlink(missing_ok=True)

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ executor logs
    def executor_logs(self, app_id: str) -> list[str]:
        """The ``stderr`` of each executor of application ``app_id``, one text per worker that ran one."""
        return [p.read_text(errors="replace") for i in range(1, self.n_workers + 1)
                for p in sorted((self.root / f"work-{i}" / app_id).glob("*/stderr"))]

    def process_pids(self) -> list[int]:
        """Every live process of the cluster: daemons, executors, executors' Python daemons and workers."""
        return process_tree({proc.pid for proc in self.processes.values()})

    def write_state(self) -> None:
        """Write ``state.json`` (master URL, UI port, process ids) for ``status`` and ``stop``."""
        state = {"master_url": self.master_url, "ui_port": self.ui_port,
                 "pids": {name: proc.pid for name, proc in self.processes.items()}}
        (self.root / "state.json").write_text(json.dumps(state, indent=1))


def _end_processes(pids: list[int], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM those of ``pids`` still alive (and not zombies), SIGKILL them after ``grace`` s."""
    def alive() -> list[int]:
        table = _proc_table()
        return [p for p in pids if p in table and table[p][0] != "Z"]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not alive():
            return


class _Exited(Exception):
    def __init__(self, name: str, log: str) -> None:
        super().__init__(f"{name} exited")
        self.name, self.log = name, log


# ---------------------------------------------------------------------- command line
STATE_HINT = Path(tempfile.gettempdir()) / "patron-spark-cluster"
"""Default ``--dir`` of the command line (one cluster per machine through it; the Python class takes any)."""


def _load_state(root: Path) -> dict[str, Any]:
    path = root / "state.json"
    if not path.exists():
        raise SystemExit(f"no cluster recorded in {root} (state.json missing)")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=STATE_HINT, help=f"logs, work folders, state [default: {STATE_HINT}]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores each worker offers")
    parser.add_argument("--memory", default="1g", help="memory each worker offers to executors")
    parser.add_argument("--port", type=int, default=DEFAULT_MASTER_PORT, help="preferred master port")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    if args.action == "start":
        if (root / "state.json").exists():
            raise SystemExit(f"a cluster is recorded in {root}: stop it first")
        cluster = StandaloneCluster(root, workers=args.workers, cores=args.cores, memory=args.memory,
                                    master_port=args.port, die_with_parent=False).start()
        print(json.dumps({"master_url": cluster.master_url, "ui": f"http://{LOOPBACK}:{cluster.ui_port}",
                          "dir": str(root)}))
        return 0
    state = _load_state(root)
    if args.action == "status":
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{state['ui_port']}/json/", timeout=5) as reply:
                info = json.loads(reply.read())
        except (OSError, ValueError) as exc:
            print(f"master at {state['master_url']} does not answer: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({k: info[k] for k in ("url", "status", "aliveworkers", "cores", "coresused")} |
                         {"activeapps": [a["id"] for a in info["activeapps"]]}))
        return 0
    daemons = {pid for name, pid in state["pids"].items() if _is_spark_daemon(pid)}
    descendants = process_tree(daemons)
    for name, pid in reversed(list(state["pids"].items())):
        if pid in daemons:
            kill_group(pid)
        else:
            print(f"{name} ({pid}) already gone", file=sys.stderr)
    _end_processes(descendants)
    (root / "state.json").unlink()
    shutil.rmtree(root / "local", ignore_errors=True)
    print(f"stopped the cluster at {state['master_url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
