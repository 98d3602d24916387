"""MLflow provenance helpers (src/pipeline/workflow/tracking.py), without a workflow."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.workflow import tracking


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    cfg = {"paths": {"results": str(tmp_path / "res")}}
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(cfg) == f"sqlite:///{(tmp_path / 'res').resolve()}/mlflow.db"
    cfg["mlflow"] = {"tracking_uri": "http://tracking.example:5000"}
    assert tracking.tracking_uri(cfg) == "http://tracking.example:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking.tracking_uri(cfg) == "sqlite:////elsewhere/m.db"
    assert tracking.artifact_root(cfg) == (tmp_path / "res/mlartifacts").resolve().as_uri()


def test_numeric_metrics_keep_finite_numbers_with_their_path():
    doc = {
        "targets": {"teff": {"scatter": 163.4, "calibrated": True, "note": "text", "nan": float("nan")}},
        "ratios": [1.2, 1.15],
        "bad key (x+y)": 3,
    }
    m = tracking.numeric_metrics(doc)
    assert m == {"targets.teff.scatter": 163.4, "targets.teff.calibrated": 1.0, "ratios.0": 1.2, "ratios.1": 1.15, "bad key _x_y_": 3.0}


def test_manifest_lists_sizes_and_sha256(tmp_path):
    store = tmp_path / "stars.zarr"
    (store / "values" / "c").mkdir(parents=True)
    (store / "zarr.json").write_bytes(b"{}")
    (store / "values" / "c" / "0").write_bytes(b"\x00" * 1000)
    m = tracking.manifest(store)
    assert m["kind"] == "folder" and m["n_files"] == 2 and m["bytes"] == 1002
    entry = {e["path"]: e for e in m["files"]}["values/c/0"]
    assert entry["bytes"] == 1000 and entry["sha256"] == hashlib.sha256(b"\x00" * 1000).hexdigest()
    assert "sha256" not in tracking.manifest(store, checksums=False)["files"][0]


def test_writes_retry_while_sqlite_reports_a_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.locked(uri, flaky) == "ok" and len(calls) == 3
    assert (tmp_path / "mlflow.db.lock").exists()
    with pytest.raises(ValueError):  # other errors are not retried
        tracking.locked(uri, lambda: (_ for _ in ()).throw(ValueError("bad column")))


class _Job:
    """The parts of Snakemake's script object that rule_run reads."""

    def __init__(self, tmp, config, rule="summary", fail=False):
        self.config, self.rule, self.threads = config, rule, 1
        self.wildcards = {"task": "a"}
        self.params = {"settings": {"dpi": 50, "bar": [1, 2]}}
        self.output = [str(tmp / "metrics.json"), str(tmp / "store")]
        self.log = [str(tmp / "job.log")]
        self.scriptdir = str(Path(__file__).resolve().parents[1] / "workflow" / "scripts")


def test_rule_run_records_params_metrics_and_outputs(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(tracking.ENV_PARENT, "")
    cfg = {"paths": {"results": str(tmp_path / "results")}, "mlflow": {"experiment": "unit", "max_file_mb": 0.001}}
    job = _Job(tmp_path, cfg)
    with tracking.rule_run(job) as run:
        Path(job.output[0]).write_text(json.dumps({"rms": 0.3, "pass": False}))
        Path(job.output[1]).mkdir()
        (Path(job.output[1]) / "chunk").write_bytes(b"x" * 5000)
        run.log_metrics({"loss": 1.0}, step=0)
        run.log_metrics({"loss": 0.5}, step=1)
    client = MlflowClient(tracking.tracking_uri(cfg))
    r = client.get_run(run.run_id)
    assert r.info.status == "FINISHED" and r.info.run_name == "summary[task=a]"
    assert r.data.tags["rule"] == "summary" and r.data.tags["config_hash"] == tracking.config_hash(cfg)
    assert r.data.params["settings.dpi"] == "50" and r.data.params["wildcards.task"] == "a"
    assert r.data.metrics["rms"] == 0.3 and r.data.metrics["pass"] == 0.0
    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [1.0, 0.5]
    assert {a.path for a in client.list_artifacts(run.run_id, "outputs")} == {"outputs/metrics.json", "outputs/manifest.json"}
    art = Path(tmp_path / "results/mlartifacts")
    manifest = json.loads(next(art.rglob("manifest.json")).read_text())
    assert manifest["entries"][0]["files"][0]["bytes"] == 5000


def test_a_failed_job_is_marked_failed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = {"paths": {"results": str(tmp_path / "results")}, "mlflow": {"experiment": "unit"}}
    with pytest.raises(RuntimeError):
        with tracking.rule_run(_Job(tmp_path, cfg)) as run:
            raise RuntimeError("catalog.parquet: column teff missing")
    assert MlflowClient(tracking.tracking_uri(cfg)).get_run(run.run_id).info.status == "FAILED"


def test_tracking_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = {"paths": {"results": str(tmp_path / "results")}, "mlflow": {"enabled": False}}
    with tracking.rule_run(_Job(tmp_path, cfg)) as run:
        run.log_metrics({"x": 1})
    assert run.run_id is None and not (tmp_path / "results/mlflow.db").exists()
    assert os.environ.get(tracking.ENV_PARENT, "") == ""
