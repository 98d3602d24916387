"""The Snakemake workflow end to end on the tiny preset, and its lint."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE
from conftest import run_snakemake as _run
from conftest import scheduled as _scheduled


@pytest.mark.slow
def test_tiny_workflow_writes_both_reports(tiny_run):
    tmp, _ = tiny_run
    realism = json.loads((tmp / "results/sky/realism.json").read_text())
    assert set(realism["quantities"]) == {"teff", "logg", "m_h", "logebv", "g_fakemag", "bprp", "bp0", "rp0"}
    for row in realism["quantities"].values():
        assert row["n"] > 100 and row["mock_mad_std"] > 0
    difficulty = json.loads((tmp / "results/sky/difficulty.json").read_text())
    for target in ("teff", "logg", "m_h"):
        assert difficulty["targets"][target]["n_test"] > 50
        assert difficulty["targets"][target]["robust_scatter_vs_labels"] > 0
        # the noise-free inputs tell more than the noisy ones: the gap is what the noise takes
        assert (
            0
            < difficulty["targets"][target]["robust_scatter_noise_free_vs_truth"]
            < difficulty["targets"][target]["robust_scatter_vs_truth"]
        )
    assert (tmp / "sky/dust/combined19/combine19.h5").exists()
    assert (tmp / "results/logs/sky.log").read_text().count("sky:") >= 5  # progress lines


def test_lint_is_clean():
    proc = _run("--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_invalid_config_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sky: {n_stars: -5}\n")
    proc = _run("--dry-run", "--configfile", str(bad))
    assert proc.returncode != 0 and "n_stars" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_tiny_workflow_catalog_and_tokens(tiny_run):
    tmp, _ = tiny_run
    counts = json.loads((tmp / "results/catalog/counts.json").read_text())
    assert counts["stars"] > 1500 and "cuts" in counts
    validation = json.loads((tmp / "results/catalog/validation.json").read_text())
    assert validation["parallax_zero_point"]["pass"], validation["parallax_zero_point"]
    from pipeline.tokens.store import open_token_store

    root = open_token_store(tmp / "results/tokens/stars.zarr")
    assert root["values"].shape == (counts["stars"], 118)


@pytest.mark.slow
def test_tiny_workflow_trains_and_checks_a_model(tiny_run):
    tmp, _ = tiny_run
    model = tmp / "results/models/tiny"
    assert (model / "model.pt").exists() and (model / "checkpoints").is_dir()
    meta = json.loads((model / "config.json").read_text())
    assert meta["n_parameters"] < 100_000 and len(meta["vocabulary"]) == 118
    heldout = json.loads((model / "heldout.json").read_text())
    for t in ("teff", "logg", "m_h"):
        assert heldout["targets"][t]["n"] > 50 and heldout["targets"][t]["robust_scatter_vs_labels"] > 0
    log = (tmp / "results/logs/train_tiny.log").read_text()
    assert "stars/s" in log and "ETA" in log


@pytest.mark.slow
def test_tiny_workflow_trains_the_experts(tiny_run):
    tmp, _ = tiny_run
    for expert, targets in (("xp30_colours", {"teff", "logg", "m_h", "logebv", "g_fakemag"}), ("params_2mass_bprp", {"rp0"})):
        metrics = json.loads((tmp / f"results/baselines/{expert}/metrics.json").read_text())
        assert set(metrics) == targets and all(m["robust_scatter"] > 0 for m in metrics.values())


@pytest.mark.slow
def test_tiny_workflow_builds_the_mass_age_model_from_the_base_model(tiny_run):
    """The VAC join, the 120-token store on the base rows and split, the model started from the base
    model, experts on mass and age, and the task's metrics against the truth."""
    import numpy as np

    from pipeline.tokens.store import open_token_store

    tmp, _ = tiny_run
    counts = json.loads((tmp / "results/mass_age/counts.json").read_text())
    assert 0 < counts["with mass and age tokens"] <= counts["catalog stars in the VAC"]
    base, ext = (open_token_store(tmp / p) for p in ("results/tokens/stars.zarr", "results/mass_age/tokens.zarr"))
    assert list(ext.attrs["vocabulary"]) == list(base.attrs["vocabulary"]) + ["mass", "age"]
    np.testing.assert_array_equal(ext["split"][:], base["split"][:])
    np.testing.assert_array_equal(ext["values"][:, :118], base["values"][:])
    assert np.isfinite(ext["values"][:, 118]).sum() == counts["with mass and age tokens"]
    meta = json.loads((tmp / "results/models/tiny_mass_age/config.json").read_text())
    assert meta["vocabulary"][-2:] == ["mass", "age"]
    log = (tmp / "results/logs/train_tiny_mass_age.log").read_text()
    assert "118 of 120 tokens known, new: ['mass', 'age']" in log
    for s in ("xp30_colours", "xp29_colours_params"):
        assert set(json.loads((tmp / f"results/mass_age/baselines/{s}/metrics.json").read_text())) == {"mass", "age"}
    m = json.loads((tmp / "results/eval/mass_age/metrics.json").read_text())
    assert m["reference"] == "truth" and m["n_stars"] >= 10
    for panel in ("model_xp30_colours", "xgboost_xp30_colours", "model_xp29_colours_params", "xgboost_xp29_colours_params"):
        assert m["panels"][panel]["mass"]["robust_scatter"] > 0 and m["panels"][panel]["age"]["robust_scatter"] > 0
    assert 0 <= m["panels"]["model_xp30_colours"]["age"]["coverage_1sigma"] <= 1


@pytest.mark.slow
def test_tiny_workflow_trains_and_scores_the_star_search(tiny_run):
    tmp, _ = tiny_run
    m = json.loads((tmp / "results/eval/search/metrics.json").read_text())
    assert m["query_tokens"] == ["teff", "logg", "m_h", "jh", "jk"] and m["n_database"] > 50
    rec = m["recovery"]
    assert all(0 <= v["rate"] <= 1 for v in rec.values()) and rec["top_1000"]["rate"] == 1.0
    assert rec["top_100"]["random"] == pytest.approx(min(1.0, 100 / m["n_database"]))
    assert [q["query"] for q in m["queries"]][0] == {"teff": 4700.0, "logg": 2.5}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "search",
            "--model",
            str(tmp / "results/search"),
            "--query",
            "teff=4700",
            "logg=2.5",
            "--top",
            "5",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0 and "similarity" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_tiny_workflow_pretrains_and_fine_tunes_spectrafm(tiny_run):
    tmp, _ = tiny_run
    import pandas as pd
    import torch

    stars = pd.read_parquet(tmp / "results/spectrafm/spectra.zarr/stars.parquet")
    assert len(stars) == 300 and {"teff", "fe_h_err", "true_mg_fe", "split"} <= set(stars.columns)
    assert len(pd.read_csv(tmp / "results/spectrafm/lines.csv")) > 400
    ck = {
        s: torch.load(tmp / f"results/spectrafm/{s}/model.pt", weights_only=False)
        for s in ("pretrain", "finetune_real", "finetune_fe", "finetune_fe_direct", "fcnn")
    }
    assert ck["pretrain"]["stage"]["spectra"] == "synthetic" and ck["finetune_real"]["stage"]["pixels_aa"][1] < 16050
    assert ck["finetune_fe"]["stage"]["n_train"] == ck["fcnn"]["stage"]["n_train"] == 100
    assert ck["finetune_fe"]["median"] == ck["pretrain"]["median"]  # fine-tunes keep the pre-training's label scale
    # the paper's ablation: finetune_fe's stars, window and schedule, started from the pre-trained model
    direct, fe = ck["finetune_fe_direct"]["stage"], ck["finetune_fe"]["stage"]
    assert direct["n_train"] == 100 and direct["window_centre_aa"] == fe["window_centre_aa"] and direct["epochs"] == fe["epochs"]
    m = json.loads((tmp / "results/eval/spectrafm/metrics.json").read_text())
    assert m["reference"] == "truth" and m["fe_h_window"]["n_fe_h_poor"] > 0
    assert {(r["model"], r["spectra"]) for r in m["table1"]["rows"]} == {
        ("pretrain", "synthetic"),
        ("pretrain", "observed"),
        ("finetune_real", "observed"),
        ("cannon", "observed"),  # the expert (Table 1's AstroNN column), at a lower order on the tiny run's few giants
        ("cannon_synthetic", "observed"),  # the synthetic gap as the expert sees it
    }
    assert all(r["n"] > 0 and r["scatter"] > 0 for r in m["table1"]["rows"])
    for model in ("fcnn", "pretrain", "finetune_real", "finetune_fe", "finetune_fe_direct"):
        assert m["fe_h_window"]["models"][model]["rmse_all"] > 0
    metrics = {r["metric"] for r in m["summary"]}
    assert {"RMSE fe_h_poor: finetune_fe_direct / pretrain", "RMSE fe_h_poor: finetune_fe_direct / finetune_fe"} <= metrics
    assert [a["label"] for a in m["attention"]] == ["teff", "logg", "fe_h", "o_fe", "mg_fe"]
    assert all(0 <= a["top_fraction_near_lines"] <= 1 for a in m["attention"])
    log = (tmp / "results/logs/spectrafm_train_finetune_fe.log").read_text()
    assert "frozen: decoder, head, encoder.-1" in log


@pytest.mark.slow
def test_a_failed_stage_leaves_no_output(tiny_run, tmp_path):
    tmp, _ = tiny_run
    (tmp_path / "data").mkdir()
    bad = tmp_path / "data/bad.parquet"  # a folder of its own: the workflow never writes beside an input
    import pandas as pd

    pd.read_parquet(tmp / "sky/gaia_source.parquet").drop(columns=["ruwe"]).to_parquet(bad)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump({"paths": {"mock_sky": str(tmp / "sky"), "results": str(tmp_path / "results")}, "inputs": {"gaia_source": str(bad)}})
    )
    proc = _run(f"{tmp_path}/results/catalog/catalog.parquet", "--cores", "1", "--configfile", "configs/tiny.yaml", str(cfg))
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/catalog.log").read_text()
    assert "ruwe" in log and "bad.parquet" in log
    assert not (tmp_path / "results/catalog").exists() or not list((tmp_path / "results/catalog").glob("*.parquet"))


@pytest.mark.slow
def test_tiny_workflow_evaluates_every_task(tiny_run):
    tmp, _ = tiny_run
    figures = yaml.safe_load((REPO / "workflow/report/figures.yaml").read_text())
    for task, figs in figures.items():
        metrics = json.loads((tmp / f"results/eval/{task}/metrics.json").read_text())
        assert metrics["task"] == task and metrics["summary"], task
        for f in figs:
            png = tmp / f"results/eval/{task}/{f}.png"
            assert png.stat().st_size > 5000, png
    import pandas as pd

    summary = pd.read_csv(tmp / "results/eval/summary.csv")
    from pipeline.evaluate.claims import CLAIMS
    from pipeline.evaluate.summary import COLUMNS
    from pipeline.evaluate.verdicts import VERDICTS

    assert list(summary.columns) == COLUMNS
    assert set(summary.task) == set(figures)
    a = summary[(summary.task == "spectra_to_parameters") & (summary.metric == "robust_scatter xp30+colours")]
    assert set(a.target) == {"teff", "logg", "m_h"} and a.xgboost.notna().all() and a.noise_floor.notna().all()
    # every number of task a has its bootstrap interval, and the ratio its paired one
    assert (a.model_lo <= a.model).all() and (a.model <= a.model_hi).all() and a.ratio_lo.notna().all()
    # every claim of the registry resolves to rows of this run's summary and has a verdict
    claims = pd.read_csv(tmp / "results/eval/claims.csv")
    assert list(claims.claim) == [c.id for c in CLAIMS] and set(claims.verdict) <= set(VERDICTS) - {"not run"}


def _mlflow(db: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("stellar-fm")
    return client, client.search_runs([exp.experiment_id], max_results=5000)


@pytest.mark.slow
def test_every_job_is_tracked_in_mlflow_without_lock_errors(tiny_run):
    """--cores 2 runs jobs side by side on one SQLite store: every job has its finished run under
    the invocation's parent run, with tags, curves, artifacts, and the registered model."""
    from collections import Counter

    tmp, _ = tiny_run
    out = (tmp / "run.out").read_text()
    jobs = _scheduled(out)
    jobs.pop("all")
    client, runs = _mlflow(tmp / "results/mlflow.db")
    parents = [r for r in runs if r.data.tags.get("rule") == "workflow"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert Counter(r.data.tags["rule"] for r in children) == Counter(jobs)
    assert all(r.info.status == "FINISHED" for r in children)
    for r in children:
        assert {"git_commit", "config_hash", "rule", "job_id"} <= set(r.data.tags), r.data.tags
    logs = out + "".join(p.read_text() for p in (tmp / "results/logs").glob("*.log"))
    assert "database is locked" not in logs and "MLflow: could not" not in logs
    train = next(r for r in children if r.info.run_name == "train[name=tiny]")
    assert train.data.params["train.preset"] == "tiny"
    epochs = [m.step for m in client.get_metric_history(train.info.run_id, "val_loss")]
    assert epochs == [0, 1]
    tokens = next(r for r in children if r.data.tags["rule"] == "tokens")
    assert [a.path for a in client.list_artifacts(tokens.info.run_id, "outputs")] == ["outputs/manifest.json"]
    evaluate = [r for r in children if r.data.tags["rule"] == "evaluate"]
    assert all(r.data.metrics for r in evaluate)
    version = client.search_model_versions("name='stellar-transformer'")[0]
    # the registered version carries the model card, and the alias of the default run's model
    assert client.get_model_version_by_alias("stellar-transformer", "default-run").version == version.version
    assert "library_name: pytorch" in version.description and "SHA-256" in version.description
    import mlflow
    import pandas as pd

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'results/mlflow.db'}")  # models:/ URIs resolve in the global store
    try:
        model = mlflow.pyfunc.load_model(f"models:/stellar-transformer/{version.version}")
    finally:
        mlflow.set_tracking_uri(previous)
    assert "bp0" in model.metadata.signature.inputs.input_names()
    catalog = pd.read_parquet(tmp / "results/catalog/catalog.parquet", columns=["bp0", "rp0", "jh", "jk", "bprp"]).head(5)
    answer = model.predict(catalog.astype(float), params={"request": ["teff"]})
    assert list(answer.columns) == ["teff", "teff_err"] and answer.notna().all().all()


@pytest.mark.slow
def test_mlflow_tracking_uri_overrides_the_default_store(tiny_run, tmp_path):
    import os

    tmp, args = tiny_run
    other = tmp_path / "other.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{other}"}
    proc = subprocess.run(
        [SNAKEMAKE, *args, "--forcerun", "summary", "--until", "summary"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, runs = _mlflow(other)
    assert sorted(r.data.tags["rule"] for r in runs) == ["summary", "workflow"]
