"""The workflow's run as the tracking store sees it (the layer above ``tracking``, which knows
nothing of it): one parent run per invocation (``start_workflow_run``/``end_workflow_run``, the
Snakefile's onstart and onsuccess/onerror); the store's health, checked once at the start; runs of
jobs that were killed (their process or SLURM job gone), marked KILLED; and each job's
``benchmark:`` file, logged to its run at the end of the invocation."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .tracking import (
    CONNECT_TIMEOUT_S,
    ENV_COMMIT,
    ENV_PARENT,
    config_hash,
    ensure_experiment,
    flatten,
    git_commit,
    job_id,
    locked,
    log_params,
    settings,
    sqlite_path,
    tracking_uri,
)

log = logging.getLogger("pipeline.workflow.tracking")


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached when the workflow starts."""


def check_tracking_store(uri: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """One quick look at the store before any job runs: an HTTP server must answer, a SQLite
    store's folder must be writable."""
    from urllib.parse import urlparse

    advice = (
        "Start the server, point MLFLOW_TRACKING_URI (or mlflow.tracking_uri) at a store you can reach, "
        "or run without tracking: mlflow: {enabled: false} in your config, or --config mlflow='{enabled: false}'"
    )
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
        except OSError as exc:
            raise TrackingUnavailable(f"MLflow tracking server {uri} is unreachable ({exc}). {advice}") from None
    elif (db := sqlite_path(uri)) is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=db.parent, prefix=".mlflow-write-check-"):
                pass
        except OSError as exc:
            raise TrackingUnavailable(f"MLflow store {uri}: cannot write in {db.parent} ({exc}). {advice}") from None


def _job_alive(job: str) -> bool | None:
    """Whether the process (host:pid, on this host) or the SLURM job of a run still exists;
    None when this machine cannot tell (another host, no squeue)."""
    import shutil

    if ":" in job:
        host, _, pid = job.rpartition(":")
        if host != socket.gethostname() or not pid.isdigit():
            return None
        from ..io.atomic import pid_alive

        return pid_alive(int(pid))
    if job.isdigit() and shutil.which("squeue"):
        try:
            out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return bool(out.stdout.strip()) if out.returncode == 0 or "Invalid job id" in out.stderr else None
    return None


def mark_killed_runs(client, uri: str, exp_id: str) -> int:
    """Runs still RUNNING whose job is gone (kill -9, a node lost) are set to KILLED."""
    runs = locked(uri, client.search_runs, [exp_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    n = 0
    for r in runs:
        if _job_alive(r.data.tags.get("job_id", "")) is False:
            locked(uri, client.set_terminated, r.info.run_id, "KILLED")
            n += 1
    if n:
        log.info("MLflow: marked %d run(s) of killed jobs KILLED", n)
    return n


def benchmark_path(log_path) -> Path:
    """A job's ``benchmark:`` file beside its log: results/logs/<name>.log -> results/benchmarks/<name>.tsv
    (the rules' benchmark directives follow this; a test checks every rule)."""
    p = Path(log_path)
    return p.parent.parent / "benchmarks" / (p.stem + ".tsv")


def read_benchmark(path) -> dict:
    """Snakemake's benchmark TSV (one row per repeat) as metrics: seconds, peak memory (MB), CPU, I/O."""
    import csv

    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        return {}
    row = rows[-1]
    names = {
        "s": "benchmark_s",
        "max_rss": "benchmark_max_rss_mb",
        "max_vms": "benchmark_max_vms_mb",
        "max_uss": "benchmark_max_uss_mb",
        "max_pss": "benchmark_max_pss_mb",
        "io_in": "benchmark_io_in_mb",
        "io_out": "benchmark_io_out_mb",
        "mean_load": "benchmark_mean_load",
        "cpu_time": "benchmark_cpu_time_s",
    }
    out = {}
    for k, name in names.items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            out[name] = float(row[k])
    return out


def log_job_benchmarks(client, uri: str, parent_run_id: str) -> int:
    """Each job run of this invocation gets its benchmark file's figures (metrics) and the file."""
    parent = client.get_run(parent_run_id)
    runs = locked(
        uri, client.search_runs, [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=5000
    )
    n = 0
    for r in runs:
        logfile = r.data.tags.get("log_file")
        bench = benchmark_path(logfile) if logfile else None
        if bench is None or not bench.is_file():
            continue
        metrics = read_benchmark(bench)
        if metrics:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            locked(uri, client.log_batch, r.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        locked(uri, client.log_artifact, r.info.run_id, str(bench), "benchmark")
        n += 1
    return n


def start_workflow_run(config: dict, targets=(), repo: str | Path = ".") -> str | None:
    """The parent run of one workflow invocation; its id goes to the jobs through the environment."""
    if not settings(config)["enabled"]:
        return None
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(config)
    check_tracking_store(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = ensure_experiment(client, uri, config)
    with contextlib.suppress(Exception):  # housekeeping: never a reason to stop the workflow
        mark_killed_runs(client, uri, exp_id)
    commit = git_commit(repo)
    os.environ[ENV_COMMIT] = commit
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    run = locked(
        uri,
        client.create_run,
        exp_id,
        run_name=f"workflow {stamp}",
        tags={
            "rule": "workflow",
            "git_commit": commit,
            "config_hash": config_hash(config),
            "job_id": job_id(),
            "targets": " ".join(map(str, targets))[:5000],
        },
    )
    log_params(client, uri, run.info.run_id, flatten(config))
    os.environ[ENV_PARENT] = run.info.run_id
    log.info("MLflow parent run %s in %s", run.info.run_id, uri)
    return run.info.run_id


def end_workflow_run(config: dict, status: str = "FINISHED"):
    """Close the parent run and log the benchmarks of its jobs; a tracking failure here (a full
    disk under the SQLite store, a server gone) is a warning: the workflow's own status stands."""
    run_id = os.environ.get(ENV_PARENT)
    if not run_id or not settings(config)["enabled"]:
        return
    try:
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(config)
        client = MlflowClient(tracking_uri=uri)
        log_job_benchmarks(client, uri, run_id)
        locked(uri, client.set_terminated, run_id, status)
    except Exception as exc:
        log.warning("MLflow: could not close the workflow run %s as %s (%s); the workflow's outputs are unaffected", run_id, status, exc)
