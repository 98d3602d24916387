"""Benchmark: where the default run's heavy jobs spend their time (issue 46's profiles), each job's
own code run briefly under py-spy on a finished run's files (a few epochs, not the whole budget:
the share of each part per epoch is what a profile shows, and it does not change with the epochs).

For each job it prints the share of its samples (inclusive) in the parts that make a
job slow when they are not the model's own arithmetic (imports, data batching, checkpoints and the
MLflow-free rest) and in the arithmetic itself (forward, backward, optimiser, validation, the
Cannon's fits, XGBoost's trees), and ends with one line: each job's share of arithmetic.

    .venv/bin/python benchmarks/profile_jobs.py --results results --threads 2
    .venv/bin/python benchmarks/record.py run profile_jobs -- .venv/bin/python benchmarks/profile_jobs.py

py-spy (the `dev` extra) samples the process from outside; on Linux it needs ptrace permission
(root, or kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# each job: what it runs (a Python snippet with {results}, {out}, {threads}) and a short budget
JOBS = {
    "train_small": (
        "import yaml; from pipeline.model.train import configs_of, train\n"
        "cfg = {{**yaml.safe_load(open('config.yaml'))['train'], 'epochs_per_cycle': 2, 'cycles': 1}}\n"
        "m, t = configs_of(cfg, 118, threads={threads})\n"
        "train('{results}/tokens/stars.zarr', '{out}', m, t, resume=False)"
    ),
    "spectrafm_train_pretrain": (
        "import yaml; from pipeline.spectrafm.train import StageConfig, train_stage; from pipeline.spectrafm.model import preset\n"
        "s = yaml.safe_load(open('config.yaml'))['spectrafm']\n"
        "st = StageConfig.from_dict({{**s['stages']['pretrain'], 'epochs': 1, 'threads': {threads}}})\n"
        "train_stage('{results}/spectrafm/spectra.zarr', '{out}', st, preset(s['preset'], **(s['model'] or {{}})), resume=False)"
    ),
    "spectrafm_train_finetune_fe": (
        "import yaml; from pipeline.spectrafm.train import StageConfig, train_stage\n"
        "c = dict(yaml.safe_load(open('config.yaml'))['spectrafm']['stages']['finetune_fe']); c.pop('init')\n"
        "st = StageConfig.from_dict({{**c, 'epochs': 15, 'threads': {threads}}})\n"
        "train_stage('{results}/spectrafm/spectra.zarr', '{out}', st, None, init_from='{results}/spectrafm/finetune_real', resume=False)"
    ),
    "evaluate_spectrafm": (
        "import pandas as pd, torch, pathlib; from pipeline.evaluate.settings import task_settings; "
        "from pipeline.evaluate.spectrafm import spectrafm\n"
        "torch.set_num_threads({threads}); r = pathlib.Path('{results}/spectrafm')\n"
        "models = {{p.name: p for p in r.iterdir() if (p / 'model.pt').exists()}}\n"
        "spectrafm(str(r / 'spectra.zarr'), models, task_settings('spectrafm', {{'spectrafm': None}}), pd.read_csv(r / 'lines.csv'))"
    ),
    "baselines_xp5_colours": (
        "from pipeline.baselines.xgb import ExpertConfig, run_experts\n"
        "run_experts('{results}/tokens/stars.zarr', '{out}', 'xp5_colours', ['teff', 'logg', 'm_h'], ExpertConfig(), n_jobs={threads})"
    ),
}

# inclusive frames (function names as py-spy reports them) -> the part of a job they are
PARTS = {
    "imports": ("_find_and_load",),
    "data batching": ("sample_batch", "TokenSampler.__iter__", "Windows.batch", "chunk_batches", "split_table", "SpectraStore.read"),
    "forward (training)": ("TokenJob.loss", "WindowJob.loss"),
    "backward": ("Tensor.backward",),
    "optimiser": ("Optimizer.profile_hook_step.<locals>.wrapper", "clip_grad_norm_"),
    "validation": ("TokenJob.validation_loss", "WindowJob.validation_loss"),
    "checkpoints": ("checkpoint", "keep_if_best", "write_history", "save_checkpoint"),
    "model inference": ("predict", "attention"),
    "the Cannon": ("fit_cannon", "Cannon.infer"),
    "XGBoost trees": ("Booster.update",),
}
ARITHMETIC = ("forward (training)", "backward", "optimiser", "validation", "model inference", "the Cannon", "XGBoost trees")


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    """py-spy's raw (collapsed) stacks -> the share of samples in each part: the main thread's
    samples and those of worker threads doing one of the parts (XGBoost's fits on the job's
    threads); a worker's other samples (a loader or pool waiting) are not the job's time."""
    total, parts = 0, Counter()
    for line in raw.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        frames = [f.split(" (")[0] for f in stack.split(";")]
        found = [part for part, names in PARTS.items() if any(f in names for f in frames)]
        if not found and any(f.startswith("Thread._bootstrap") for f in frames[:3]):
            continue
        total += int(n)
        for part in found:
            parts[part] += int(n)
    return total, {p: parts[p] / max(total, 1) for p in PARTS}


def profile(name: str, code: str, results: Path, threads: int, rate: int) -> tuple[float, int, dict]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        script = code.format(results=results, out=Path(tmp) / "out", threads=threads)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [spy, "record", "-f", "raw", "-r", str(rate), "-o", str(raw), "--", sys.executable, "-c", script],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not raw.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"profile_jobs: {name} failed (exit {proc.returncode}):\n" + "\n".join(tail))
        total, parts = shares(raw)
    return seconds, total, parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("results"), help="a finished default run's results folder")
    p.add_argument("--threads", type=int, default=2, help="the threads each job is given (the rule's threads)")
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--jobs", nargs="*", default=list(JOBS), choices=list(JOBS))
    args = p.parse_args(argv)
    for need in ("tokens/stars.zarr", "spectrafm/spectra.zarr", "spectrafm/finetune_real/model.pt"):
        if not (args.results / need).exists():
            print(f"profile_jobs: {args.results / need} is missing: run the workflow first", file=sys.stderr)
            return 2
    print(f"{'job':28s} {'s':>6s} " + " ".join(f"{k[:11]:>11s}" for k in PARTS))
    arithmetic = {}
    for name in args.jobs:
        seconds, total, parts = profile(name, JOBS[name], args.results, args.threads, args.rate)
        print(f"{name:28s} {seconds:6.1f} " + " ".join(f"{100 * parts[k]:10.1f}%" for k in PARTS), flush=True)
        arithmetic[name] = sum(parts[k] for k in ARITHMETIC)
    print("arithmetic share: " + ", ".join(f"{k} {v:.2f}" for k, v in arithmetic.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
