"""Record a benchmark's output, or a workflow run's per-rule costs, as a file that docs/benchmarks.md is
written from (no figure in the docs is typed by hand).

    .venv/bin/python benchmarks/record.py run bench_model -- .venv/bin/python benchmarks/bench_model.py --preset small
    .venv/bin/python benchmarks/record.py workflow default-run results     # results/benchmarks/*.tsv of a finished run
    .venv/bin/python benchmarks/record.py doc                              # docs/benchmarks.md from benchmarks/recorded/
    .venv/bin/python benchmarks/record.py slowest results --since T        # a run's wall time and slowest jobs

``run`` runs the command, shows its output as it comes, and writes benchmarks/recorded/<name>.json:
the command, its output, its last line (each benchmark ends with its line of ratios), the machine
(CPU model, cores, memory, GPU, torch), the load average while it ran and when. ``workflow`` reads
Snakemake's benchmark files of a results folder (wall seconds, peak resident memory, CPU seconds
per job) into benchmarks/recorded/workflow-<name>.json. ``doc`` writes docs/benchmarks.md from
every recorded file (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS = HERE / "recorded"
DOC = HERE.parent / "docs" / "benchmarks.md"


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    gpu = ""
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "gpu": gpu,
        "torch": torch_version,
        "python": platform.python_version(),
    }


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def run(name: str, command: list[str]) -> int:
    """Run one benchmark, echo its output, record it (only when it succeeded)."""
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line.rstrip("\n"))
    rc = proc.wait()
    if rc != 0:
        print(f"record: {name} exited with {rc}; nothing recorded", file=sys.stderr)
        return rc
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    kept = [s for s in lines if s.strip()]
    _write(
        RECORDS / f"{name}.json",
        {
            "name": name,
            "command": " ".join(command),
            "finished": started.strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(seconds, 1),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "machine": machine(),
            "output": kept,
            "last_line": kept[-1] if kept else "",
        },
    )
    return 0


def workflow(name: str, results: Path) -> int:
    """A finished run's cost per rule job, from Snakemake's benchmark files."""
    folder = Path(results) / "benchmarks"
    files = sorted(folder.glob("*.tsv"))
    if not files:
        print(f"record: {folder}: no benchmark files (run the workflow first)", file=sys.stderr)
        return 2
    jobs = []
    for f in files:
        with f.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            r = rows[-1]
            jobs.append({"job": f.stem, "seconds": float(r["s"]), "max_rss_mb": float(r["max_rss"]), "cpu_seconds": float(r["cpu_time"])})
    jobs.sort(key=lambda j: -j["seconds"])
    newest = max(f.stat().st_mtime for f in files)
    # the run's own wall time: from the first job's start (a benchmark file is written when its job
    # ends, so its start is its time less its wall seconds) to the last job's end
    starts = [f.stat().st_mtime - float(list(csv.DictReader(f.open(), delimiter="\t"))[-1]["s"]) for f in files if f.stat().st_size]
    _write(
        RECORDS / f"workflow-{name}.json",
        {
            "name": f"workflow-{name}",
            "results": str(results),
            "finished": dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "wall_seconds": round(newest - min(starts), 1) if starts else None,
            "jobs": jobs,
        },
    )
    return 0


DEFAULT_RUN = "workflow-default-run"  # the fresh-clone `make run` whose time the README states
README = HERE.parent / "README.md"
RUNTIME_START, RUNTIME_END = "<!-- runtime:start (benchmarks/record.py doc) -->", "<!-- runtime:end -->"


def runtime_line(records_dir: Path = RECORDS) -> str:
    """The README's one statement of the default run's time, from the recorded fresh-clone run."""
    path = Path(records_dir) / f"{DEFAULT_RUN}.json"
    if not path.is_file():
        return "its time is not recorded yet (benchmarks/record.py workflow default-run results)"
    rec = json.loads(path.read_text())
    cores = rec["machine"].get("cores", "?")
    if rec.get("wall_seconds"):
        return f"{rec['wall_seconds'] / 60:.0f} min on {cores} CPU cores in the recorded run of {rec['finished'][:10]}, docs/benchmarks.md"
    total = sum(j["seconds"] for j in rec["jobs"])
    return f"at most {total / 60:.0f} min on {cores} CPU cores (the jobs' time in the recorded run of {rec['finished'][:10]}), docs/benchmarks.md"


def readme_with_runtime(text: str, records_dir: Path = RECORDS) -> str:
    if RUNTIME_START not in text or RUNTIME_END not in text:
        raise ValueError(f"README.md has no {RUNTIME_START} ... {RUNTIME_END} to write the run time into")
    head, rest = text.split(RUNTIME_START, 1)
    return f"{head}{RUNTIME_START}{runtime_line(records_dir)}{RUNTIME_END}{rest.split(RUNTIME_END, 1)[1]}"


def slowest(results: Path, since: float = 0.0, n: int = 5) -> str:
    """The wall time of the jobs that ran since ``since`` (epoch seconds) and the ``n`` slowest of them,
    from a results folder's benchmark files (what `make run` prints at its end)."""
    rows = []
    for f in sorted((Path(results) / "benchmarks").glob("*.tsv")):
        if f.stat().st_mtime < since or not f.stat().st_size:
            continue
        r = list(csv.DictReader(f.open(), delimiter="\t"))[-1]
        rows.append((float(r["s"]), f.stem, f.stat().st_mtime))
    if not rows:
        return "no job ran (everything was up to date)"
    span = max(end for _, _, end in rows) - min(end - sec for sec, _, end in rows)
    lines = [f"{len(rows)} jobs ran, {span / 60:.1f} min from the first job's start to the last's end; the slowest:"]
    lines += [f"  {sec:7.0f} s  {name}" for sec, name, _ in sorted(rows, reverse=True)[:n]]
    return "\n".join(lines)


def _machine_line(m: dict) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB{gpu}; torch {m['torch']}, Python {m['python']}"


def _section(rec: dict) -> list[str]:
    out = [f"## {rec['name']}", "", f"- machine: {_machine_line(rec['machine'])}", f"- finished: {rec['finished']}"]
    if "jobs" in rec:
        total = sum(j["seconds"] for j in rec["jobs"])
        out += [
            f"- results folder: `{rec['results']}`; {len(rec['jobs'])} jobs, {total / 60:.1f} min of job wall time in all "
            + (
                f"and {rec['wall_seconds'] / 60:.1f} min from the first job's start to the last's end (jobs run side by side)"
                if rec.get("wall_seconds")
                else "(jobs run side by side, so the run's own wall time is less)"
            ),
            "",
            "| job | wall s | peak RSS MB | CPU s |",
            "|---|---|---|---|",
        ]
        out += [f"| {j['job']} | {j['seconds']:.0f} | {j['max_rss_mb']:.0f} | {j['cpu_seconds']:.0f} |" for j in rec["jobs"]]
        return out + [""]
    load = rec["load_average"]
    out += [
        f"- command: `{rec['command']}` ({rec['seconds']:.0f} s; load average {load[0]} before, {load[1]} after: "
        "other work on the machine slows both sides of a ratio alike, not its absolute figures)",
        f"- **{rec['last_line']}**",
        "",
        "```",
        *rec["output"],
        "```",
        "",
    ]
    return out


def render(records_dir: Path = RECORDS) -> str:
    """docs/benchmarks.md from the recorded files (benchmarks first, then workflow runs; by name)."""
    recs = [json.loads(p.read_text()) for p in sorted(Path(records_dir).glob("*.json"))]
    recs.sort(key=lambda r: ("jobs" in r, r["name"]))
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/record.py doc` from the files in `benchmarks/recorded/`, each recorded by",
        "`benchmarks/record.py run` (a benchmark's output, its machine and load) or `benchmarks/record.py workflow`",
        "(a finished run's cost per job, from Snakemake's benchmark files); a test keeps this page in step with them.",
        "Compare speeds only within one file: each benchmark measures its ratios side by side in one run.",
        "",
    ]
    for rec in recs:
        lines += _section(rec)
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="run a benchmark and record its output")
    r.add_argument("name")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    w = sub.add_parser("workflow", help="record a finished run's per-job costs")
    w.add_argument("name")
    w.add_argument("results", type=Path)
    sub.add_parser("doc", help="write docs/benchmarks.md and the README's run time")
    t = sub.add_parser("slowest", help="the wall time and the five slowest jobs of a run (make run prints it)")
    t.add_argument("results", type=Path)
    t.add_argument("--since", type=float, default=0.0, help="only jobs that ended after this time (epoch seconds)")
    args = p.parse_args(argv)
    if args.what == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            p.error("run: give the command after --")
        return run(args.name, command)
    if args.what == "workflow":
        return workflow(args.name, args.results)
    if args.what == "slowest":
        print(slowest(args.results, args.since))
        return 0
    DOC.write_text(render())
    README.write_text(readme_with_runtime(README.read_text()))
    print(f"wrote {DOC} and the run time in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
