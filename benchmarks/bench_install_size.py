"""Benchmark: how much ``pip install patron`` puts on disk and downloads, core and ``[all]`` (issue 21).

    .venv/bin/python benchmarks/bench_install_size.py [--variants core all] [--top 15] [--keep DIR]

For each variant, in a fresh temporary folder:

1. ``python -m venv`` (this interpreter), then ``pip install`` of this checkout (non-editable,
   with its dependencies resolved as a user's ``pip install patron`` / ``pip install
   'patron[all]'`` would; wheels may come from pip's cache or the configured find-links);
2. on-disk size of what was installed: per distribution, the files of its ``RECORD``
   (``importlib.metadata``, run by the new venv's interpreter) -- file sizes (MiB = 2**20 bytes)
   and allocated blocks (what ``du`` counts); the total of ``site-packages`` and how much of it
   is the packages' own test suites (folders named ``tests``); the number of distributions. ``pip`` itself (and ``setuptools`` if the venv has it) comes with the venv, not
   with patron: listed, but left out of the totals;
3. download size: ``pip download`` of the same requirement into an empty folder (the wheels a
   machine without a cache fetches), summed.

For the core it also checks that the core works on its own: in the core venv, ``patron ingest``
of the bundled CDNOW sample, ``summary``, ``fit bgnbd`` and ``score`` run (exit 0), and ``patron
report``, ``serve``, ``contact-effect --uplift`` and ``summary --engine spark`` each print one
line naming their extra (exit 1). Figures are printed, never asserted; nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
VENV_TOOLS = {"pip", "setuptools", "wheel"}
"""Distributions a venv brings itself (not patron's dependencies)."""

SIZES = r"""
import json, os, sys, sysconfig
from importlib import metadata
site = sysconfig.get_paths()["purelib"]
out = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    size = blocks = 0
    for f in dist.files or ():
        try:
            st = os.stat(dist.locate_file(f))
        except OSError:
            continue
        size += st.st_size
        blocks += st.st_blocks * 512
    out[name] = {"version": dist.version, "bytes": size, "allocated": blocks}
total = allocated = tests = 0
for folder, _, names in os.walk(site):
    in_tests = "tests" in os.path.relpath(folder, site).split(os.sep)
    for n in names:
        st = os.lstat(os.path.join(folder, n))
        total += st.st_size
        allocated += st.st_blocks * 512
        tests += st.st_size if in_tests else 0
print(json.dumps({"site_packages": site, "total": total, "total_allocated": allocated, "tests": tests, "dists": out}))
"""

EXTRA_CHECKS: list[tuple[str, list[str]]] = [
    ("report", ["report", "--db", "cdnow.duckdb", "--out", "r.html"]),
    ("service", ["serve", "--db", "cdnow.duckdb"]),
    ("uplift", ["contact-effect", "--uplift", "--db", "cdnow.duckdb"]),
    ("spark", ["summary", "--engine", "spark", "--transactions", "t.parquet", "--end", "1997-09-30"]),
]
"""Commands of an extra the core lacks, and the extra each must name."""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def requirement(variant: str) -> str:
    return str(ROOT) if variant == "core" else f"{ROOT}[{variant}]"


def make_venv(folder: Path, variant: str) -> Path:
    venv = folder / f"venv-{variant}"
    run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = run([str(python), "-m", "pip", "install", "--quiet", requirement(variant)])
    if done.returncode:
        raise SystemExit(f"pip install {requirement(variant)} failed:\n{done.stderr[-3000:]}")
    return python


def sizes(python: Path) -> dict:
    return json.loads(run([str(python), "-c", SIZES], check=True).stdout)


def download(folder: Path, python: Path, variant: str) -> dict:
    target = folder / f"wheels-{variant}"
    target.mkdir()
    done = run([str(python), "-m", "pip", "download", "--quiet", "-d", str(target), requirement(variant)])
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "pip download failed"}
    files = {p.name: p.stat().st_size for p in target.iterdir() if p.is_file()}
    return {"files": len(files), "bytes": sum(files.values()), "largest": sorted(files.items(), key=lambda kv: -kv[1])[:8]}


def core_checks(folder: Path, python: Path) -> list[tuple[str, int, str, int]]:
    """(what, exit code, last line of output, lines on stderr) of each core command and each extra's command."""
    bindir = python.parent
    patron = str(bindir / "patron")
    work = folder / "work"
    work.mkdir()
    sample = run([str(python), "-c", "from patron.data.datasets import data_path; print(data_path('CDNOW_sample.txt'))"],
                 check=True).stdout.strip()
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    env.pop("PATRON_ENGINE", None)
    steps = [
        ("ingest", ["ingest", sample, "--db", "cdnow.duckdb", "--columns", "master_customer_id,customer_id,date,number_of_cds,amount",
                    "--map", "occurred_at=date", "--date-format", "%Y%m%d"]),
        ("summary", ["summary", "--db", "cdnow.duckdb", "--end", "1997-09-30", "--out", "summary.parquet"]),
        ("fit", ["fit", "bgnbd", "--db", "cdnow.duckdb", "--end", "1997-09-30", "--save", "bgnbd.json"]),
        ("score", ["score", "--db", "cdnow.duckdb", "--end", "1997-09-30", "--out", "scores.csv"]),
    ] + [(f"{extra} extra", args) for extra, args in EXTRA_CHECKS]
    results = []
    for name, args in steps:
        done = run([patron, *args], cwd=work, env=env, timeout=600)
        text = (done.stderr.strip() or done.stdout.strip()).splitlines()
        results.append((name, done.returncode, text[-1] if text else "", len(done.stderr.strip().splitlines())))
    return results


def report(variant: str, info: dict, wheels: dict, top: int) -> dict:
    dists = info["dists"]
    own = {n: d for n, d in dists.items() if n.lower() not in VENV_TOOLS}
    tools = {n: d for n, d in dists.items() if n.lower() in VENV_TOOLS}
    total = sum(d["bytes"] for d in own.values())
    allocated = sum(d["allocated"] for d in own.values())
    print(f"\n== {variant}: pip install {'patron' if variant == 'core' else f'patron[{variant}]'} ==")
    print(f"distributions installed: {len(own)} (plus the venv's own {', '.join(sorted(tools)) or 'none'})")
    print(f"on disk, patron and its dependencies: {total / MIB:,.1f} MiB of files, {allocated / MIB:,.1f} MiB allocated")
    print(f"site-packages as a whole (venv tools included): {info['total'] / MIB:,.1f} MiB of files, "
          f"{info['total_allocated'] / MIB:,.1f} MiB allocated")
    print(f"of which the packages' own test suites (folders named tests): {info['tests'] / MIB:,.1f} MiB")
    print(f"{'distribution':<28} {'version':<14} {'MiB':>8} {'share':>7}")
    for name, d in sorted(own.items(), key=lambda kv: -kv[1]["bytes"])[:top]:
        print(f"{name:<28} {d['version']:<14} {d['bytes'] / MIB:>8.1f} {d['bytes'] / total:>7.1%}")
    rest = sorted(own.items(), key=lambda kv: -kv[1]["bytes"])[top:]
    if rest:
        print(f"{'(' + str(len(rest)) + ' others)':<28} {'':<14} {sum(d['bytes'] for _, d in rest) / MIB:>8.1f}")
    if "error" in wheels:
        print(f"download: not measured ({wheels['error']})")
    else:
        print(f"download (pip download, {wheels['files']} files): {wheels['bytes'] / MIB:,.1f} MiB; largest: "
              + ", ".join(f"{n.split('-')[0]} {b / MIB:.1f}" for n, b in wheels["largest"]))
    return {"variant": variant, "distributions": len(own), "mib_files": total / MIB, "mib_allocated": allocated / MIB,
            "download_mib": wheels.get("bytes", 0) / MIB, "per_distribution_mib": {n: d["bytes"] / MIB for n, d in own.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["core", "all"], help="core and/or extras (all, service, ...)")
    parser.add_argument("--top", type=int, default=15, help="distributions listed by size")
    parser.add_argument("--keep", type=Path, default=None, help="build the venvs here and keep them (default: a temp dir, removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="patron-install-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}; checkout {ROOT}; venvs in {folder}")
    figures = []
    try:
        for variant in args.variants:
            python = make_venv(folder, variant)
            info = sizes(python)
            figures.append(report(variant, info, download(folder, python, variant), args.top))
            if variant == "core":
                print("\ncore only: the commands of the core, and those of each extra")
                checks = core_checks(folder, python)
                for name, code, last, err_lines in checks:
                    print(f"  {name:<15} exit {code}  stderr lines {err_lines}  {last[:150]}")
                figures[-1]["checks"] = [{"step": n, "exit": c, "line": t} for n, c, t, _ in checks]
        if len(figures) == 2:
            a, b = figures
            extra = set(b["per_distribution_mib"]) - set(a["per_distribution_mib"])
            print(f"\n{b['variant']} adds {len(extra)} distributions, {b['mib_files'] - a['mib_files']:,.1f} MiB: "
                  + ", ".join(f"{n} {b['per_distribution_mib'][n]:.1f}" for n in sorted(extra, key=lambda n: -b["per_distribution_mib"][n])))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
