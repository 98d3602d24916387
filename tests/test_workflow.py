"""The Snakemake workflow end to end on the tiny preset, and its lint."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _run(*args, cwd=REPO):
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wf")
    paths = tmp / "paths.yaml"
    paths.write_text(yaml.safe_dump({"paths": {"sky": str(tmp / "sky"), "results": str(tmp / "results")}}))
    args = ("--cores", "2", "--configfile", "configs/tiny.yaml", str(paths))
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, args


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
    assert (tmp / "sky/dust/combined19/combine19.h5").exists()
    assert (tmp / "results/logs/sky.log").read_text().count("sky:") >= 5  # progress lines


@pytest.mark.slow
def test_unchanged_rerun_schedules_nothing(tiny_run):
    _, args = tiny_run
    proc = _run(*args, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


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
    for expert, targets in (("xp30_colours", {"teff", "logg", "m_h"}), ("params_2mass_bprp", {"rp0"})):
        metrics = json.loads((tmp / f"results/baselines/{expert}/metrics.json").read_text())
        assert set(metrics) == targets and all(m["robust_scatter"] > 0 for m in metrics.values())


@pytest.mark.slow
def test_a_failed_stage_leaves_no_output(tiny_run, tmp_path):
    tmp, _ = tiny_run
    bad = tmp_path / "bad.parquet"
    import pandas as pd

    pd.read_parquet(tmp / "sky/gaia_source.parquet").drop(columns=["ruwe"]).to_parquet(bad)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"paths": {"sky": str(tmp / "sky"), "results": str(tmp_path / "results")},
                                   "inputs": {"gaia_source": str(bad)}}))
    proc = _run(f"{tmp_path}/results/catalog/catalog.parquet", "--cores", "1", "--configfile", "configs/tiny.yaml", str(cfg))
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/catalog.log").read_text()
    assert "ruwe" in log and "bad.parquet" in log
    assert not (tmp_path / "results/catalog").exists() or not list((tmp_path / "results/catalog").glob("*.parquet"))
