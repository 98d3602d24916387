"""The SLURM profile (with data-parallel training) and Dask-on-SLURM, proven on a real (one-node, localhost) SLURM cluster.

Needs Debian's slurm-wlm and munge: installed with apt when absent and we are root (as in CI),
otherwise the tests skip and say why. The daemons started here are stopped by pid at the end.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from slurm_cluster import ClusterUnavailable, LocalSlurm, ensure_installed

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

STAGES = ("catalog", "tokens", "train", "model_check")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = ensure_installed()
    if why:
        pytest.skip(why)
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        env = cluster.__enter__()
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
    yield cluster, env
    cluster.__exit__(None, None, None)
    for _name, pid in cluster.started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _test_profile(folder: Path, logdir: Path) -> Path:
    """profiles/slurm as shipped, fitted to the test cluster: its partition, no account, squeue for
    status (accounting is off), requests capped to the node, no GPU, SLURM logs kept."""
    cfg = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert cfg["executor"] == "slurm" and "train" in cfg["set-resources"]
    assert "gpu" in cfg["set-resources"]["train"] or "gres" in cfg["set-resources"]["train"]
    cpus, mem = os.cpu_count() or 1, 2000
    cfg["default-resources"] = {**cfg["default-resources"], "slurm_partition": "debug", "mem_mb": mem}
    cfg["default-resources"].pop("slurm_account")
    cfg["set-threads"] = {rule: min(n, cpus) for rule, n in cfg["set-threads"].items()}
    for res in cfg["set-resources"].values():
        for key in ("gpu", "gpu_model", "gres", "slurm_partition"):
            res.pop(key, None)
        res["mem_mb"] = min(res.get("mem_mb", mem), mem)
    cfg.update(
        {
            "slurm-status-command": "squeue",
            "slurm-no-account": True,
            "slurm-logdir": str(logdir),
            "slurm-keep-successful-logs": True,
            "slurm-init-seconds-before-status-checks": 6,  # then 22, 48 s: the test's ~15-s jobs are seen at the 2nd check
            "latency-wait": 5,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def test_tiny_workflow_through_the_slurm_profile_matches_a_local_run(slurm, tiny_run, tmp_path):
    cluster, env = slurm
    local, _ = tiny_run
    paths = tmp_path / "paths.yaml"
    # the local run's mock sky (the sky rule is a job like the others; the catalog on is what differs)
    paths.write_text(yaml.safe_dump({"paths": {"mock_sky": str(local / "sky"), "results": str(tmp_path / "results")}}))
    logdir = tmp_path / "slurm_logs"
    profile = _test_profile(tmp_path / "profile", logdir)
    targets = [str(tmp_path / "results/models/tiny/heldout.json")]
    # the training as 2 data-parallel ranks: the train job (sbatch) launches them (torchrun, gloo,
    # a thread each); they take the steps the local run's one process takes
    ranks = tmp_path / "ranks.yaml"
    ranks.write_text(yaml.safe_dump({"train": {"processes": 2}}))
    proc = run_snakemake(
        *targets, "--profile", str(profile), "--configfile", "configs/tiny.yaml", str(paths), str(ranks), env=env, timeout=1500
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + cluster.log_tail()
    train_log = (tmp_path / "results/logs/train_tiny.log").read_text()
    assert "torch.distributed.run --nproc-per-node=2 --standalone" in train_log and "2 data-parallel ranks" in train_log, train_log[-2000:]
    assert "epoch    2/2" in train_log and "resuming" not in train_log, train_log[-2000:]
    # every job went through sbatch: each rule has its SLURM log, with a numeric job id as name
    for rule in STAGES:
        logs = list((logdir / f"rule_{rule}").rglob("*.log"))
        assert logs and all(p.stem.isdigit() for p in logs), (rule, sorted(logdir.rglob("*")))
    # ... and the outputs equal the local run's
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "results/catalog/catalog.parquet"), pd.read_parquet(local / "results/catalog/catalog.parquet")
    )
    assert json.loads((tmp_path / "results/catalog/counts.json").read_text()) == json.loads(
        (local / "results/catalog/counts.json").read_text()
    )
    from pipeline.tokens.store import open_token_store

    a, b = open_token_store(tmp_path / "results/tokens/stars.zarr"), open_token_store(local / "results/tokens/stars.zarr")
    np.testing.assert_array_equal(a["values"][:], b["values"][:])
    np.testing.assert_array_equal(a["split"][:], b["split"][:])
    ha = json.loads((tmp_path / "results/models/tiny/heldout.json").read_text())["targets"]
    hb = json.loads((local / "results/models/tiny/heldout.json").read_text())["targets"]
    for t in ("teff", "logg", "m_h"):  # 2 ranks against 2 threads: the same steps, other last bits
        assert ha[t]["robust_scatter_vs_labels"] == pytest.approx(hb[t]["robust_scatter_vs_labels"], rel=1e-3)
    # the jobs' MLflow runs carry their SLURM job ids, under one parent run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'results/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stellar-fm").experiment_id])
    jobs = [r for r in runs if r.data.tags["rule"] != "workflow"]
    assert {r.data.tags["rule"] for r in jobs} >= set(STAGES)
    assert all(r.data.tags["job_id"].isdigit() and r.info.status == "FINISHED" for r in jobs)
    assert len({r.data.tags.get("mlflow.parentRunId") for r in jobs}) == 1


def test_dask_stage_on_slurm_worker_jobs_matches_local_threads(slurm, tiny_run):
    """dask.cluster: slurm: the extinction sampling on dask-jobqueue worker jobs gives the local result."""
    cluster, env = slurm
    local, _ = tiny_run
    from pipeline.catalog.extinction import log_ebv_dask
    from pipeline.dask_cluster import dask_client

    cat = pd.read_parquet(local / "results/catalog/catalog.parquet").head(300)
    args = (
        cat.parallax_corrected_mas.to_numpy(),
        cat.parallax_error_mas.to_numpy(),
        cat.l.to_numpy(),
        cat.b.to_numpy(),
        str(local / "sky/dust"),
    )
    kw = {"n_samples": 100, "chunk_stars": 100, "seed": 3}
    expect = log_ebv_dask(*args, **kw)
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]  # sbatch, from dask-jobqueue, finds the test cluster
    try:
        cfg = {
            "cluster": "slurm",
            "jobs": 1,
            "wait_s": 240,
            "slurm": {
                "cores": 1,
                "memory": "1GB",
                "walltime": "00:10:00",
                "queue": "debug",
                "job_extra_directives": [f"--output={cluster.dir}/dask-%j.out"],
            },
        }
        with dask_client(cfg) as client:
            assert client is not None and len(client.scheduler_info()["workers"]) >= 1
            got = log_ebv_dask(*args, **kw, client=client)
    finally:
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
    np.testing.assert_allclose(got[0], expect[0], equal_nan=True)
    np.testing.assert_allclose(got[1], expect[1], equal_nan=True)
    assert list(cluster.dir.glob("dask-*.out")), "no Dask worker job ran through sbatch"
