"""Interruptions: kill -9 or SIGTERM at a random point of a job, then a rerun ends with the
uninterrupted run's outputs, the killed run marked in MLflow and no temporary left."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CORES, REPO, SNAKEMAKE, run_snakemake
from fault_helpers import TINY, _config, _leftover_temporaries

pytestmark = pytest.mark.faults


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A copy of the session's tiny run (mtimes kept), with its own config: (folder, snakemake args)."""
    src, _ = tiny_run
    for part in ("sky", "results"):
        shutil.copytree(src / part, tmp_path / part, symlinks=True)
    paths = _config(tmp_path, paths={"mock_sky": str(tmp_path / "sky"), "results": str(tmp_path / "results")})
    return tmp_path, (*CORES, *TINY, str(paths))


def _job_process(proc, script: str, timeout=120):
    import psutil

    t0 = time.time()
    while time.time() - t0 < timeout:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if any(a.endswith(f".{script}") for a in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before the {script} job started: {proc.stdout.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {script} job within {timeout} s")


def _kill_at_random_point(folder, args, target, script, benchmark, rng, force=True, wait_for: Path | None = None, sig=signal.SIGKILL):
    """Run the target's job (forced, or because its output was deleted) and kill -9 it at a random
    point of its runtime in the uninterrupted run (read from that job's benchmark file), or, with
    ``wait_for``, a random moment (0-0.5 s) after that file appears. Only that job may run: the
    copy's upstream outputs are up to date."""
    bench = float(pd.read_csv(folder / "results/benchmarks" / benchmark, sep="\t").s.iloc[-1])
    proc = subprocess.Popen(
        [SNAKEMAKE, *args, *(["--force"] if force else []), "--", str(target)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    job = _job_process(proc, script)
    if wait_for is not None:
        t0 = time.time()
        while not wait_for.exists() and job.is_running() and time.time() - t0 < 300:
            time.sleep(0.05)
        delay = float(rng.uniform(0.0, 0.5))
        time.sleep(delay)
    else:
        delay = float(rng.uniform(0.3, 0.85)) * bench
        time.sleep(max(0.0, delay - (time.time() - job.create_time())))
    alive = job.is_running()
    try:
        os.kill(job.pid, sig)
    except ProcessLookupError:  # it ended between the check and the kill
        alive = False
    out, _ = proc.communicate(timeout=300)
    assert alive, (
        f"the job ended before it could be killed ({delay:.2f} s into a job of {bench:.2f} s in the uninterrupted run: other load on the machine?)"
    )
    assert proc.returncode != 0, out[-2000:]
    jobs = [line.split()[-1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))]
    assert jobs == [Path(script).stem], jobs
    return delay, out


def _numbers(obj, skip=("seconds",)):
    return {
        k: v
        for k, v in __import__("pipeline.workflow.tracking", fromlist=["flatten"]).flatten(obj).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k.split(".")[-1] not in skip
    }


def test_a_deleted_output_and_kill_9_in_the_catalog_then_rerun_gives_the_same_catalog(run_copy):
    folder, args = run_copy
    res = folder / "results"
    original = pd.read_parquet(res / "catalog/catalog.parquet"), json.loads((res / "catalog/counts.json").read_text())
    (res / "catalog/counts.json").unlink()  # an output deleted by hand: the next run remakes it (and only its job)
    _, out = _kill_at_random_point(
        folder, args, res / "catalog/counts.json", "catalog.py", "catalog.tsv", np.random.default_rng(1), force=False
    )
    assert "Missing output files" in out
    assert not (res / "catalog/catalog.parquet").exists() and not (res / "catalog/counts.json").exists()
    proc = run_snakemake(*args, "--", str(res / "catalog/counts.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(res / "catalog/catalog.parquet"), original[0])
    assert json.loads((res / "catalog/counts.json").read_text()) == original[1]
    assert _leftover_temporaries(res) == []


def test_kill_9_in_training_then_rerun_resumes_to_the_same_model_and_marks_the_run_killed(run_copy):
    import torch
    from mlflow.tracking import MlflowClient

    folder, args = run_copy
    res = folder / "results"
    model = res / "models/tiny"
    original = torch.load(model / "model.pt", weights_only=True)
    # train from scratch (no checkpoint of the finished run to resume), killed during the second
    # epoch, just after the first epoch's checkpoint: the rerun must resume from that one
    shutil.rmtree(model / "checkpoints")
    (model / "last.pt").unlink()
    _kill_at_random_point(
        folder, args, model / "model.pt", "train.py", "train_tiny.tsv", np.random.default_rng(2), wait_for=model / "last.pt"
    )
    assert not (model / "model.pt").exists()
    proc = run_snakemake(*args, "--", str(model / "model.pt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in (res / "logs/train_tiny.log").read_text()
    rerun = torch.load(model / "model.pt", weights_only=True)
    worst = max((original[k] - rerun[k]).abs().max().item() for k in original)
    assert worst == 0.0, worst  # bit for bit, on the job's 2 threads too
    assert _leftover_temporaries(res) == []
    client = MlflowClient(f"sqlite:///{res / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("stellar-fm").experiment_id], filter_string="attributes.run_name = 'train[name=tiny]'"
    )
    assert "KILLED" in {r.info.status for r in runs}, [r.info.status for r in runs]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.info.status == "FINISHED" and "benchmark_s" in r.data.metrics]
    assert finished and finished[0].data.metrics["benchmark_max_rss_mb"] > 0  # the job's benchmark, in its run


def test_sigterm_in_training_marks_its_run_killed_keeps_the_checkpoint_and_leaves_no_temporary(run_copy):
    """SIGTERM is what SLURM sends at the wall-time limit: the job itself marks its MLflow run KILLED
    (not left RUNNING until the next invocation), keeps the last checkpoint, and the rerun resumes."""
    from mlflow.tracking import MlflowClient

    folder, args = run_copy
    res = folder / "results"
    model = res / "models/tiny"
    shutil.rmtree(model / "checkpoints")
    (model / "last.pt").unlink()
    _kill_at_random_point(
        folder,
        args,
        model / "model.pt",
        "train.py",
        "train_tiny.tsv",
        np.random.default_rng(3),
        wait_for=model / "last.pt",
        sig=signal.SIGTERM,
    )
    assert not (model / "model.pt").exists() and (model / "last.pt").exists()
    assert _leftover_temporaries(res) == []
    assert "stopped by SIGTERM" in (res / "logs/train_tiny.log").read_text()
    client = MlflowClient(f"sqlite:///{res / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("stellar-fm").experiment_id],
        filter_string="attributes.run_name = 'train[name=tiny]'",
        order_by=["attributes.start_time DESC"],
    )
    assert runs[0].info.status == "KILLED", [r.info.status for r in runs]  # marked by the job, before any rerun
    proc = run_snakemake(*args, "--", str(model / "model.pt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in (res / "logs/train_tiny.log").read_text()


def test_kill_9_in_an_evaluation_then_rerun_gives_the_same_metrics(run_copy):
    folder, args = run_copy
    res = folder / "results"
    task = res / "eval/spectra_to_parameters"
    original = json.loads((task / "metrics.json").read_text())
    _kill_at_random_point(
        folder, args, task / "metrics.json", "evaluate.py", "evaluate_spectra_to_parameters.tsv", np.random.default_rng(3)
    )
    assert not (task / "metrics.json").exists()
    proc = run_snakemake(*args, "--", str(task / "metrics.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _numbers(json.loads((task / "metrics.json").read_text())) == pytest.approx(_numbers(original), rel=1e-6, abs=1e-9, nan_ok=True)
    assert _leftover_temporaries(res) == []
