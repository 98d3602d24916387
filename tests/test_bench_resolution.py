"""benchmarks/bench_resolution.py: where the identity of Teff is lost, by the given Teff."""

import numpy as np
import pandas as pd
import pytest

from conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    return benchmark_module("bench_resolution")


def test_identity_by_teff_splits_offsets_from_scatter(bench, tmp_path, capsys):
    rng = np.random.default_rng(3)
    given = np.r_[np.full(200, 4600.0), np.full(50, 6500.0)]  # the bulk of giants; a few hot stars
    offset = np.r_[np.full(200, -20.0), np.full(50, 40.0)] + rng.normal(0.0, 1.0, 250) * np.r_[np.full(200, 8.0), np.full(50, 120.0)]
    rows = pd.DataFrame({"panel": "model_xp_high_labels", "label_teff": given, "teff": given + offset, "teff_err": 3.0})
    other = pd.DataFrame({"panel": "model_xp30_colours", "label_teff": [5000.0], "teff": [9000.0], "teff_err": [1.0]})
    table = bench.identity_by_teff(pd.concat([rows, other]))
    assert list(table.n) == [0, 200, 0, 0, 50]  # the other panel's star is not the identity's
    bulk, hot = table.iloc[1], table.iloc[-1]
    assert bulk.bias_k == pytest.approx(-20.0, abs=1.5) and bulk.scatter_k == pytest.approx(8.0, rel=0.2)
    assert hot.bias_k == pytest.approx(40.0, abs=40.0) and hot.scatter_k == pytest.approx(120.0, rel=0.35)
    assert bulk.median_sigma_k == 3.0 and np.isnan(table.scatter_k.iloc[0])
    path = tmp_path / "predictions.parquet"
    pd.concat([rows, other]).to_parquet(path)
    assert bench.main(["--identity-by-teff", str(path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("ratios: identity of Teff, each file in turn: all / bulk ")


def test_identity_by_teff_refuses_other_tables(bench):
    with pytest.raises(ValueError, match="model_xp_high_labels"):
        bench.identity_by_teff(pd.DataFrame({"panel": ["x"], "label_teff": [1.0], "teff": [1.0], "teff_err": [1.0]}))


def test_candidates_only_trains_those_named(bench, tmp_path, monkeypatch):
    """--only: the named candidates alone (a trained folder is measured as it is), an unknown name refused."""
    spec = tmp_path / "candidates.yaml"
    spec.write_text("base: {}\ncandidates:\n  a: {train: {seed: 1}}\n  b: {train: {seed: 2}}\n  c: {train: {seed: 3}}\n")
    results = tmp_path / "results"
    for name in ("a", "c"):
        (results / "resolution" / name).mkdir(parents=True)
        (results / "resolution" / name / "model.pt").write_bytes(b"")
    monkeypatch.setattr("pipeline.tokens.store.open_token_store", lambda path: pytest.fail("nothing to train"))
    folders = bench.train_candidates(spec, results, threads=1, only=["c", "a"])
    assert [f.name for f in folders] == ["a", "c"]  # the file's order; b neither trained nor measured
    with pytest.raises(SystemExit, match="no candidate d"):
        bench.train_candidates(spec, results, threads=1, only=["a", "d"])
