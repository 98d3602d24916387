import json

import numpy as np
import pandas as pd
import pytest

from pipeline.baselines.xgb import INPUT_SETS, ExpertConfig, resolve_inputs, run_experts, train_expert
from pipeline.tokens.store import build_token_store
from pipeline.tokens.vocab import BASE_VOCABULARY, vocabulary


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 3000
    cols = {"source_id": np.arange(1, n + 1)}
    for t in BASE_VOCABULARY:
        cols[t], cols[f"{t}_err"] = rng.normal(size=n), np.full(n, 0.01)
    # teff is a known function of two inputs, plus 10 K of noise
    cols["teff"] = 5000 + 400 * cols["bp0"] - 300 * cols["rp0"] ** 2 + rng.normal(0, 10, n)
    cols["teff_err"] = np.full(n, 10.0)
    cat = pd.DataFrame(cols)
    cat.loc[:99, "bp3"] = np.nan  # incomplete inputs: left out of the expert's train and test sets
    path = tmp_path_factory.mktemp("bl") / "stars.zarr"
    build_token_store(cat, path, vocabulary(), chunk_stars=512)
    return path


def test_input_sets_are_the_papers():
    assert len(INPUT_SETS["xp30_colours"]) == 63 and INPUT_SETS["xp30_colours"][-3:] == ("jh", "jk", "bprp")
    assert len(INPUT_SETS["xp_high"]) == 60 and "bp25" in INPUT_SETS["xp_high"] and "bp24" not in INPUT_SETS["xp_high"]
    assert resolve_inputs(["teff", "jh"]) == ("teff", "jh")
    with pytest.raises(ValueError, match="unknown input set"):
        resolve_inputs("everything")


def test_expert_learns_a_known_relation_on_complete_test_stars(store):
    cfg = ExpertConfig(n_estimators=300, device="cpu", complete_inputs=True)
    model, m, preds = train_expert(store, "xp5_colours", "teff", cfg, n_jobs=2)
    assert m["robust_scatter"] < 40  # the relation has 10 K of noise
    assert m["n_test"] + m["n_train"] <= 3000 - 100 and m["n_test"] == len(preds)
    assert not preds.row.isin(range(100)).any()  # stars with incomplete inputs are never used


def test_expert_takes_stars_with_missing_xp_inputs_by_default(store):
    model, m, preds = train_expert(store, "xp5_colours", "teff", ExpertConfig(n_estimators=300, device="cpu"), n_jobs=2)
    assert not m["complete_inputs"] and preds.row.isin(range(100)).any()  # incomplete stars are used too
    complete = ~preds.row.isin(range(100))
    assert np.median(np.abs(preds.teff[complete] - preds.teff_label[complete])) * 1.4826 < 40
    with pytest.raises(ValueError, match="also an input"):
        train_expert(store, "params", "teff", ExpertConfig(n_estimators=5))


def test_run_experts_writes_models_metrics_predictions(store, tmp_path):
    m = run_experts(store, tmp_path / "e", "params", ["rp0", "bp0"], ExpertConfig(n_estimators=20, device="cpu"))
    assert set(m) == {"rp0", "bp0"}
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["rp0"]["n_test"] > 0
    assert (tmp_path / "e" / "model_rp0.json").exists()
    p = pd.read_parquet(tmp_path / "e" / "predictions.parquet")
    assert {"row", "source_id", "rp0", "rp0_label", "bp0"} <= set(p.columns)
    again = run_experts(store, tmp_path / "f", "params", ["rp0", "bp0"], ExpertConfig(n_estimators=20, device="cpu"))
    assert again["rp0"]["robust_scatter"] == m["rp0"]["robust_scatter"]  # seeded


def test_complete_inputs_auto_requires_them_only_for_sets_without_xp():
    from pipeline.baselines.xgb import INPUT_SETS, requires_complete_inputs

    assert requires_complete_inputs(INPUT_SETS["params_2mass_bprp"], "auto")
    assert not requires_complete_inputs(INPUT_SETS["xp30_colours"], "auto")
    assert requires_complete_inputs(INPUT_SETS["xp30_colours"], True) and not requires_complete_inputs(("teff",), False)
    with pytest.raises(ValueError, match="true, false or auto"):
        requires_complete_inputs(("teff",), "sometimes")


def test_expert_stops_early_on_validation_stars_and_picks_its_grid_point_there(store, monkeypatch, tmp_path):
    """The expert's trees and its depth and rate are chosen on the validation split: every fit's
    eval_set is the val stars (never the test stars), the tuning is recorded, and the saved model
    predicts as the chosen one (its trees up to the best validation round)."""
    import xgboost as xgb

    from pipeline.tokens.store import split_table

    val = split_table(store, "val", ("teff",))
    test = split_table(store, "test", ("teff",))
    seen = []
    fit = xgb.XGBRegressor.fit

    def spy(self, x, y, *args, eval_set=None, **kw):
        seen.append((len(y), [np.asarray(v[1]) for v in eval_set]))
        return fit(self, x, y, *args, eval_set=eval_set, **kw)

    monkeypatch.setattr(xgb.XGBRegressor, "fit", spy)
    cfg = ExpertConfig(n_estimators=2000, early_stopping_rounds=20, max_depth=[2, 4], learning_rate=[0.3], device="cpu")
    m = run_experts(store, tmp_path / "e", "xp5_colours", ["teff"], cfg)["teff"]
    assert len(seen) == 2  # one fit per grid point
    for n_fit, (y_val,) in seen:
        np.testing.assert_allclose(np.sort(y_val), np.sort(val.teff.to_numpy(np.float32)[val.teff.notna()]), rtol=1e-6)
        assert n_fit == m["n_train"] and len(y_val) == m["n_val"] != 0
        assert not np.isin(y_val, test.teff.to_numpy(np.float32)).all()
    t = m["tuning"]
    assert [(p["max_depth"], p["learning_rate"]) for p in t["grid"]] == [(2, 0.3), (4, 0.3)]
    assert t["chosen"] == min(t["grid"], key=lambda p: p["val_robust_scatter"])
    assert all(p["n_trees"] < 2000 for p in t["grid"])  # stopped early, well before the cap
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())["teff"]["tuning"]
    assert saved["chosen"]["n_trees"] == t["chosen"]["n_trees"]
    booster = xgb.Booster(model_file=str(tmp_path / "e" / "model_teff.json"))
    assert booster.num_boosted_rounds() == t["chosen"]["n_trees"]  # the trees up to the best round only


def test_experts_on_two_threads_are_the_experts_on_one(store, tmp_path):
    """The grid's points (and a grid_on: first set's other targets) fitted side by side on the
    job's threads choose the same point, grow the same trees and predict the same as one after another."""
    for grid_on, targets in (("each", ["teff", "logg"]), ("first", ["rp0", "bp0", "bp1"])):
        cfg = ExpertConfig(
            n_estimators=300, early_stopping_rounds=10, max_depth=[2, 3], learning_rate=[0.1, 0.3], grid_on=grid_on, device="cpu"
        )
        one = run_experts(store, tmp_path / f"{grid_on}1", "xp5_colours" if grid_on == "each" else "params", targets, cfg, n_jobs=1)
        two = run_experts(store, tmp_path / f"{grid_on}2", "xp5_colours" if grid_on == "each" else "params", targets, cfg, n_jobs=2)
        for t in targets:
            assert one[t]["tuning"]["grid"] == two[t]["tuning"]["grid"] and one[t]["robust_scatter"] == two[t]["robust_scatter"]
        p1, p2 = (pd.read_parquet(tmp_path / f"{grid_on}{k}" / "predictions.parquet") for k in (1, 2))
        pd.testing.assert_frame_equal(p1, p2)


def test_expert_grid_accepts_one_value_and_refuses_none():
    from pipeline.baselines.xgb import grid_points

    assert grid_points(ExpertConfig(max_depth=6, learning_rate=0.05)) == [(6, 0.05)]
    assert len(grid_points(ExpertConfig())) == 6
    with pytest.raises(ValueError, match="at least one"):
        grid_points(ExpertConfig(max_depth=[]))


def test_an_expert_set_may_name_a_band_and_its_own_settings():
    from pipeline.baselines.xgb import expert_plan

    plan = expert_plan({"xp5_colours": ["teff"], "rp55": {"targets": ["bp"], "xgboost": {"grid_on": "first"}}}, {"max_depth": [4, 6]})
    assert plan["xp5_colours"] == (["teff"], {"max_depth": [4, 6]})
    targets, settings = plan["rp55"]
    assert targets == [f"bp{k}" for k in range(55)] and settings == {"max_depth": [4, 6], "grid_on": "first"}


def test_grid_on_first_searches_the_grid_once_per_set(store, tmp_path):
    cfg = ExpertConfig(n_estimators=300, early_stopping_rounds=10, max_depth=[2, 3], learning_rate=[0.3], grid_on="first", device="cpu")
    m = run_experts(store, tmp_path / "e", "params", ["rp0", "bp0"], cfg)
    assert len(m["rp0"]["tuning"]["grid"]) == 2 and len(m["bp0"]["tuning"]["grid"]) == 1
    first = m["rp0"]["tuning"]["chosen"]
    assert (m["bp0"]["tuning"]["chosen"]["max_depth"], m["bp0"]["tuning"]["chosen"]["learning_rate"]) == (first["max_depth"], 0.3)
    with pytest.raises(ValueError, match="each or first"):
        run_experts(store, tmp_path / "f", "params", ["rp0"], ExpertConfig(grid_on="sometimes"))


def test_a_rare_target_of_a_many_target_set_gets_no_expert_and_few_validation_stars_no_early_stopping(tmp_path):
    """A band's rarest coefficients on a small sky: too few train stars -> no expert (metrics.json
    says why) when the set has other targets; too few validation stars -> the grid's first point
    without early stopping, said in its tuning."""
    rng = np.random.default_rng(2)
    n = 400
    cols = {"source_id": np.arange(1, n + 1)}
    for t in BASE_VOCABULARY:
        cols[t], cols[f"{t}_err"] = rng.normal(size=n), np.full(n, 0.01)
    cat = pd.DataFrame(cols)
    cat.loc[8:, "bp1"] = np.nan  # bp1: 8 stars in all, fewer than 10 in train
    cat.loc[60:, "bp2"] = np.nan  # bp2: ~48 train stars, ~6 validation stars
    store = tmp_path / "s.zarr"
    build_token_store(cat, store, vocabulary(), chunk_stars=128)
    cfg = ExpertConfig(n_estimators=300, early_stopping_rounds=10, max_depth=[3], learning_rate=[0.3], device="cpu")
    m = run_experts(store, tmp_path / "e", "rp55", ["bp0", "bp1", "bp2"], cfg)
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(m) == {"bp0", "bp2"} and "only" in saved["bp1"]["skipped"] and not (tmp_path / "e" / "model_bp1.json").exists()
    assert "validation stars" in m["bp2"]["tuning"]["chosen_on"] and m["bp2"]["tuning"]["chosen"]["n_trees"] == 100
    from pipeline.baselines.xgb import TooFewStars

    with pytest.raises(TooFewStars, match="only"):
        run_experts(store, tmp_path / "f", "rp55", ["bp1"], cfg)  # a set's only target: an error, not a silent gap
