"""Provenance in MLflow: one run per rule job, grouped under one parent run per workflow invocation.

Every rule script runs its body inside ``rule_run(snakemake)``, which records an MLflow run named
after the rule and its wildcards (``train[name=small]``), tagged with the git commit, the hash of
the whole configuration, the rule and the job id (SLURM's job id on a cluster, host:pid
locally), with the rule's params as parameters, the numbers of its JSON outputs as metrics, the
curves a rule logs step by step (training: one step per epoch), and its outputs and log as
artifacts. Folders and files above ``artifacts.max_file_mb`` go in as a manifest (relative path,
size, SHA-256) instead of a copy, so a multi-GB token store is described, not duplicated.

The Snakefile's ``onstart`` opens the parent run (``jobs.start_workflow_run``) and passes its id to
the jobs in ``PIPELINE_MLFLOW_PARENT_RUN_ID`` (inherited by local jobs and by sbatch, which
exports the submitting environment); ``onsuccess``/``onerror`` close it. Before that it checks
once, with a short timeout, that the store can be reached (an unreachable server is an error
naming ``mlflow.enabled`` and ``MLFLOW_TRACKING_URI``, not minutes of silent retries), and it
marks KILLED the runs that a killed job left RUNNING (their process or SLURM job is gone).
When the invocation ends, each job's ``benchmark:`` file (Snakemake's runtime and peak memory,
``results/benchmarks/<log name>.tsv``) is logged to that job's run.

The default store is ``sqlite:///<results>/mlflow.db`` with artifacts in
``<results>/mlartifacts``; ``MLFLOW_TRACKING_URI`` overrides it. SQLite takes one writer at a
time: parallel jobs serialise their writes through a lock file next to the database and retry
when SQLite still reports a lock. Tracking failures when a job starts fail it (nothing expensive
has run yet); failures after the work is done are logged as warnings, so a finished result is
never thrown away for want of a tracking server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..hashing import config_hash

log = logging.getLogger(__name__)

# MLflow's HTTP client retries for minutes by default; a pipeline job should fail (or warn) fast.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
CONNECT_TIMEOUT_S = 5.0
ENV_PARENT = "PIPELINE_MLFLOW_PARENT_RUN_ID"
ENV_COMMIT = "PIPELINE_GIT_COMMIT"
DEFAULTS = {
    "enabled": True,
    "experiment": "stellar-fm",
    "tracking_uri": "",  # empty: sqlite:///<results>/mlflow.db (MLFLOW_TRACKING_URI overrides both)
    "artifact_root": "",  # empty: <results>/mlartifacts (for experiments this pipeline creates)
    "max_file_mb": 20.0,  # larger outputs, and folders, are logged as a manifest
    "checksums": True,  # SHA-256 of every file in a manifest
    "register_model": True,
    "registered_model_name": "stellar-transformer",
}
_METRIC_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_METRICS = 2000
MAX_PARAM_CHARS = 6000


def settings(config: dict) -> dict:
    """The ``mlflow:`` block of the configuration with its defaults filled in."""
    return {**DEFAULTS, **((config or {}).get("mlflow") or {})}


def tracking_uri(config: dict) -> str:
    """MLFLOW_TRACKING_URI if set, else the configured URI, else SQLite in the results folder (absolute)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or settings(config)["tracking_uri"]
    if uri:
        return uri
    results = Path((config.get("paths") or {}).get("results", "results")).resolve()
    return f"sqlite:///{results / 'mlflow.db'}"


def artifact_root(config: dict) -> str:
    root = settings(config)["artifact_root"] or str(Path((config.get("paths") or {}).get("results", "results")) / "mlartifacts")
    return Path(root).resolve().as_uri()


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _writer_lock(uri: str):
    """One writer at a time on a SQLite store (an flock on <db>.lock); nothing for a server."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def locked(uri: str, fn, *args, attempts: int = 8, **kwargs):
    """Call fn under the writer lock, retrying with back-off while the database reports a lock."""
    for attempt in range(attempts):
        try:
            with _writer_lock(uri):
                return fn(*args, **kwargs)
        except Exception as exc:  # MlflowException wraps sqlite3.OperationalError
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def git_commit(repo: str | Path = ".") -> str:
    """HEAD of the checkout the workflow runs from, '+dirty' when it has uncommitted changes."""
    if os.environ.get(ENV_COMMIT):
        return os.environ[ENV_COMMIT]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=20)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True, timeout=20
        ).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def job_id() -> str:
    return os.environ.get("SLURM_JOB_ID") or f"{socket.gethostname()}:{os.getpid()}"


def flatten(obj, prefix: str = "") -> dict:
    """Nested dicts (and lists) to {'a.b.0': leaf}."""
    out = {}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else None
    if items is None:
        return {prefix: obj}
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, (dict, list, tuple)) and v else {key: v})
    return out


def numeric_metrics(obj, prefix: str = "") -> dict:
    """The finite numbers (and booleans, as 0/1) of a JSON document, keyed by their path."""
    out = {}
    for k, v in flatten(obj, prefix).items():
        if isinstance(v, bool):
            v = float(v)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[_METRIC_KEY.sub("_", k)[:250]] = float(v)
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(path: str | Path, checksums: bool = True) -> dict:
    """Files under ``path`` (or the file itself) with sizes and SHA-256."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    entries = [
        {
            "path": str(p.relative_to(path)) if path.is_dir() else p.name,
            "bytes": p.stat().st_size,
            **({"sha256": _file_sha256(p)} if checksums else {}),
        }
        for p in files
    ]
    return {
        "path": str(path),
        "kind": "folder" if path.is_dir() else "file",
        "n_files": len(entries),
        "bytes": int(sum(e["bytes"] for e in entries)),
        "files": entries,
    }


class _Null:
    """Tracking switched off: the same calls, doing nothing."""

    run_id = None
    log = logging.getLogger("pipeline")

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def log_model(self, model_dir, log_pyfunc):
        pass


class RuleRun:
    """An MLflow run for one rule job; use as ``with rule_run(snakemake) as run:``."""

    log = logging.getLogger("pipeline")

    def __init__(self, sm, repo: str | Path | None = None):
        from mlflow.tracking import MlflowClient

        self.sm, self.cfg = sm, settings(sm.config)
        self.uri = tracking_uri(sm.config)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.repo = repo or Path(sm.scriptdir or ".").resolve().parents[1]
        wildcards = {k: v for k, v in sm.wildcards.items()}
        name = sm.rule + ("[" + ",".join(f"{k}={v}" for k, v in wildcards.items()) + "]" if wildcards else "")
        exp_id = ensure_experiment(self.client, self.uri, sm.config)
        tags = {
            "rule": sm.rule,
            "job_id": job_id(),
            "git_commit": git_commit(self.repo),
            "log_file": str(Path(sm.log[0]).resolve()) if sm.log else "",
            "config_hash": config_hash(sm.config),
            "threads": str(sm.threads),
            **{f"wildcard.{k}": str(v) for k, v in wildcards.items()},
        }
        if os.environ.get(ENV_PARENT):
            tags["mlflow.parentRunId"] = os.environ[ENV_PARENT]
        run = self._call(self.client.create_run, exp_id, run_name=name, tags=tags)
        self.run_id = run.info.run_id
        params = flatten({k: v for k, v in sm.params.items()})
        params.update({f"wildcards.{k}": v for k, v in wildcards.items()})
        self.log_params(params)
        log.info("MLflow run %s (%s) in %s", self.run_id, name, self.uri)

    def _call(self, fn, *args, **kwargs):
        return locked(self.uri, fn, *args, **kwargs)

    def log_params(self, params: dict):
        log_params(self.client, self.uri, self.run_id, params)

    def log_metrics(self, metrics: dict, step: int | None = None):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step or 0) for k, v in numeric_metrics(metrics).items()][:MAX_METRICS]
        for i in range(0, len(items), 1000):
            self._call(self.client.log_batch, self.run_id, metrics=items[i : i + 1000])

    def log_logs(self):
        for p in map(Path, self.sm.log):
            if p.is_file():
                self._call(self.client.log_artifact, self.run_id, str(p), "logs")

    def log_outputs(self):
        """The outputs (numbers of JSON outputs as metrics; small files copied, folders and large
        files as a manifest) and the log."""
        limit = float(self.cfg["max_file_mb"]) * 1e6
        big = []
        for p in map(Path, self.sm.output):
            if not p.exists():
                continue
            if p.suffix == ".json" and p.is_file():
                with contextlib.suppress(ValueError, OSError):
                    self.log_metrics(json.loads(p.read_text()))
            if p.is_dir() or p.stat().st_size > limit:
                big.append(manifest(p, self.cfg["checksums"]))
            else:
                self._call(self.client.log_artifact, self.run_id, str(p), "outputs")
        if big:
            with tempfile.TemporaryDirectory() as tmp:
                m = Path(tmp) / "manifest.json"
                m.write_text(json.dumps({"max_file_mb": self.cfg["max_file_mb"], "entries": big}, indent=1))
                self._call(self.client.log_artifact, self.run_id, str(m), "outputs")
        self.log_logs()

    def log_model(self, model_dir, log_pyfunc):
        """A model folder as an MLflow pyfunc, registered when configured: ``log_pyfunc(run_id, uri,
        model_dir, name)`` is the model's own logger (model.mlflow_model.log_pyfunc), passed in so
        that tracking does not depend on the model code."""
        if not self.cfg["register_model"]:
            return None
        name = self.cfg["registered_model_name"]
        base = (self.sm.config.get("train") or {}).get("name")
        if base and Path(model_dir).name != base:  # a second model (mass_age) gets a name of its own
            name = f"{name}-{Path(model_dir).name}"
        return self._call(log_pyfunc, self.run_id, self.uri, model_dir, name)

    def end(self, status: str):
        self._call(self.client.set_terminated, self.run_id, status)


def log_params(client, uri: str, run_id: str, params: dict):
    from mlflow.entities import Param

    items = [Param(str(k)[:250], (v if isinstance(v, str) else json.dumps(v, default=str))[:MAX_PARAM_CHARS]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        locked(uri, client.log_batch, run_id, params=items[i : i + 100])


def ensure_experiment(client, uri: str, config: dict) -> str:
    """The configured experiment's id, creating it (with its artifact root) when absent."""
    name = settings(config)["experiment"]

    def get_or_create():
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return client.create_experiment(name, artifact_location=artifact_root(config) if sqlite_path(uri) else None)

    return locked(uri, get_or_create)


class Terminated(BaseException):
    """SIGTERM (what SLURM sends at the wall-time limit, what ``kill`` sends) in a job's main thread."""


@contextlib.contextmanager
def terminate_raises():
    """SIGTERM raises ``Terminated`` instead of ending the process at once, so that ``finally``
    blocks run (temporaries removed, the MLflow run marked KILLED); the last checkpoint is kept."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated(f"stopped by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def rule_run(sm):
    """Logging to the rule's log file, and an MLflow run around the rule's work: FINISHED, FAILED,
    or KILLED when the job is stopped by SIGTERM or SIGINT."""
    from .logs import setup

    logger = setup(sm.log[0] if sm.log else None)
    if not settings(sm.config)["enabled"]:
        with terminate_raises():
            yield _Null()
        return
    run = RuleRun(sm)
    try:
        with terminate_raises():
            yield run
    except BaseException as exc:
        with contextlib.suppress(Exception):
            run.log_logs()
            run.end("KILLED" if isinstance(exc, (Terminated, KeyboardInterrupt)) else "FAILED")
        if isinstance(exc, (Terminated, KeyboardInterrupt)):
            logger.error("stopped (%s); the last checkpoint is kept, a rerun resumes from it", exc or "SIGINT")
        raise
    try:
        run.log_outputs()
        run.end("FINISHED")
    except Exception as exc:  # the work is done: keep its outputs, say what tracking missed
        logger.warning("MLflow: could not finish run %s (%s); the outputs are kept", run.run_id, exc)
