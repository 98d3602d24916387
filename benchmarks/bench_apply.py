"""Benchmark: `python -m pipeline apply` as a new user runs it, on download-shaped files, against the
workflow's own answers for the same sources.

    .venv/bin/python benchmarks/bench_apply.py --results results --sky resources/mock_sky

Reads the mock's all-sky population as the Gaia archive ships it (sky.xp_all: the bulk
XpContinuousMeanSpectrum_<range>.csv.gz and GaiaSource_<range>.csv.gz files), runs `apply` in a
fresh process with the run's model and the mock's dust map, times it (sources/s, start-up
included), and compares every answer, sigma and flag with `results/catalog_all/<range>.parquet`
(rule predict_catalog). Ends with one line: the rate and the largest difference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="a finished run's results folder (its models/ and catalog_all/)")
    p.add_argument("--sky", default="resources/mock_sky", help="the mock sky (xp_all/ and dust/)")
    p.add_argument("--model", default="small", help="the model's name under results/models/")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    results, sky = Path(args.results), Path(args.sky)
    workflow = sorted((results / "catalog_all").glob("*-*.parquet"))
    if not workflow:
        print(f"error: {results}/catalog_all has no partitions: run the workflow first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "answers.parquet"
        cmd = [sys.executable, "-m", "pipeline", "apply", "--model", str(results / "models" / args.model)]
        cmd += ["--xp", str(sky / "xp_all/xp_continuous"), "--gaia-source", str(sky / "xp_all/gaia_source")]
        cmd += ["--dust-dir", str(sky / "dust"), "--output", str(out), "--threads", str(args.threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        summary = [line for line in proc.stderr.splitlines() if "XP sources read" in line]
        ours = pd.read_parquet(out)
    theirs = pd.concat([pd.read_parquet(f) for f in workflow], ignore_index=True)
    both = ours.merge(theirs, on="source_id", suffixes=("", "_workflow"))
    numeric = [c for c in ours.columns if c != "source_id" and c + "_workflow" in both and np.issubdtype(ours[c].dtype, np.number)]
    worst = max(float(np.nanmax(np.abs(both[c] - both[c + "_workflow"]).to_numpy(float), initial=0.0)) for c in numeric)
    nan_differ = sum(int((both[c].isna() != both[c + "_workflow"].isna()).sum()) for c in numeric)
    others = [c for c in ours.columns if c != "source_id" and c not in numeric and c + "_workflow" in both]
    other_differ = sum(int((both[c].astype(str) != both[c + "_workflow"].astype(str)).sum()) for c in others)
    print(f"files: {len(workflow)} partitions of the archive's CSV layout; {len(ours):,} sources answered, {len(theirs):,} by the workflow")
    print(summary[0].split("INFO ", 1)[-1] if summary else "(no summary line)")
    print(f"apply: {wall:.1f} s wall in a fresh process (start-up included), {len(ours) / wall:,.0f} sources/s, {args.threads} thread(s)")
    print(f"against the workflow: {len(both):,} sources joined; {len(numeric)} numeric columns, largest |difference| {worst:.3g}; ")
    print(f"  missing in one and not the other: {nan_differ}; other columns ({', '.join(others)}) differing: {other_differ}")
    print(f"ratios: apply {len(ours) / wall:,.0f} sources/s; max |apply - workflow| {worst:.3g} over {len(both):,} sources")
    return 0 if len(both) == len(theirs) == len(ours) and worst == 0 and nan_differ == 0 and other_differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
