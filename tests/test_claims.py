"""Bootstrap intervals of the summary's numbers, the claims registry and its verdicts."""

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluate import claims as C
from pipeline.evaluate import findings as F
from pipeline.evaluate import verdicts as V
from pipeline.evaluate.data import summary_row
from pipeline.evaluate.intervals import PerStar, bootstrap_interval, interval_columns, mean, median, paired_ratio, rms, robust_scatter
from pipeline.evaluate.summary import COLUMNS


def test_robust_scatter_of_a_gaussian_is_its_sigma_and_works_on_many_resamples():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, 200_000)
    assert robust_scatter(x) == pytest.approx(2.0, rel=0.01)
    # by hand: values 1, 2, 3, 4, 100: median 3, |x - 3| = 2, 1, 0, 1, 97, MAD 1 -> 1.4826
    assert robust_scatter(np.array([1.0, 2, 3, 4, 100])) == pytest.approx(1.4826)
    many = robust_scatter(np.array([[1.0, 2, 3, 4, 100], [0.0, 0, 1, 1, np.nan]]))
    assert many == pytest.approx([1.4826, 0.7413])  # second: NaN ignored, median 0.5, |x - 0.5| = 0.5 each
    assert rms(np.array([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))


@pytest.mark.parametrize(
    "stat,draw,truth",
    [
        (robust_scatter, lambda rng, n: rng.normal(0.0, 1.5, n), 1.5),
        (median, lambda rng, n: rng.exponential(1.0, n), math.log(2.0)),
        (mean, lambda rng, n: rng.uniform(0.0, 1.0, n) < 0.3, 0.3),  # a recovery rate
    ],
)
def test_bootstrap_interval_covers_the_true_value_at_its_stated_rate(stat, draw, truth):
    """200 independent samples of 400 stars: the 95% interval must hold the true value in 95% of
    them; with 200 trials the binomial spread of the count is +-3%, so 89-99% passes."""
    rng = np.random.default_rng(7)
    hits = 0
    trials = 200
    for _ in range(trials):
        lo, hi = bootstrap_interval(PerStar(draw(rng, 400).astype(float), stat), resamples=400)
        hits += lo <= truth <= hi
    assert 0.89 <= hits / trials <= 0.99, hits / trials


def test_paired_ratio_interval_is_narrower_than_the_values_and_covers_the_truth():
    """Model and expert scored on the same stars share each star's difficulty: the paired ratio's
    interval is tight even when each scatter alone is loose."""
    rng = np.random.default_rng(3)
    difficulty = rng.lognormal(0.0, 1.0, 500)  # the stars vary a lot
    model = rng.normal(0, 1, 500) * difficulty
    expert = model * 1.2  # the expert is exactly 1.2x worse on every star
    cols = interval_columns(PerStar(model), PerStar(expert))
    assert cols["model_over_xgboost"] == pytest.approx(1 / 1.2)
    assert cols["ratio_lo"] == pytest.approx(1 / 1.2) and cols["ratio_hi"] == pytest.approx(1 / 1.2)
    assert cols["model_hi"] - cols["model_lo"] > 0.1 * cols["model"]
    assert cols["n_stars"] == 500


def test_summary_row_takes_numbers_or_per_star_values():
    row = summary_row("t", "teff", "m", 2.0)
    assert set(row) == set(COLUMNS) and row["model"] == 2.0 and math.isnan(row["model_lo"]) and math.isnan(row["xgboost"])
    row = summary_row("t", "teff", "m", PerStar(np.r_[np.random.default_rng(0).normal(0, 1, 300), np.nan]), floor=0.5)
    assert row["model_lo"] < row["model"] < row["model_hi"] and row["noise_floor"] == 0.5 and row["n_stars"] == 300


def test_intervals_are_the_same_for_the_same_inputs():
    x = np.random.default_rng(5).normal(0, 1, 321)
    assert bootstrap_interval(PerStar(x)) == bootstrap_interval(PerStar(x.copy()))


def _summary(rows):
    return pd.DataFrame([{c: r.get(c, np.nan) for c in COLUMNS} for r in rows], columns=COLUMNS)


def test_verdicts_need_the_whole_interval():
    assert V.verdict_between(0.8, 0.95, -math.inf, 1.0) == V.REPRODUCED
    assert V.verdict_between(0.95, 1.05, -math.inf, 1.0) == V.INCONCLUSIVE
    assert V.verdict_between(1.01, 1.2, -math.inf, 1.0) == V.NOT_REPRODUCED
    assert V.verdict_between(float("nan"), float("nan"), -math.inf, 1.0) == V.INCONCLUSIVE  # no interval: no verdict
    assert V.verdict_between(0.9, 1.1, 0.8, 1.25) == V.REPRODUCED
    assert V.verdict_between(1.3, 1.4, 0.8, 1.25) == V.NOT_REPRODUCED
    assert V.verdict_less(1, 2, 3, 4) == V.REPRODUCED
    assert V.verdict_less(1, 3.5, 3, 4) == V.INCONCLUSIVE
    assert V.verdict_less(5, 6, 3, 4) == V.NOT_REPRODUCED


# a row of task "x": a model at 90 [85, 95], 0.9 [0.85, 0.96] of its expert
RATIO_ROW = {"task": "x", "target": "teff", "metric": "a", "model": 90, "model_lo": 85, "model_hi": 95}
RATIO_ROW.update(model_over_xgboost=0.9, ratio_lo=0.85, ratio_hi=0.96)


def test_a_claim_is_judged_on_its_rows_ratio_or_ordering():
    s = _summary(
        [
            RATIO_ROW,
            {"task": "x", "target": "teff", "metric": "b", "model": 120, "model_lo": 110, "model_hi": 130, "noise_floor": 100},
        ]
    )
    ratio = C.Claim("r", "LB23", "Fig", "s", "0.9x", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0))
    order = C.Claim("o", "LB23", "Fig", "s", "", C.Less(C.Row("x", "teff", "a"), C.Row("x", "teff", "b")))
    floor = C.Claim("f", "LB23", "Fig", "s", "", C.Below(C.Row("x", "teff", "b", "over_floor"), 1.25))
    half = C.Claim("h", "LB23", "Fig", "s", "", C.Less(C.Row("x", "teff", "a"), C.Row("x", "teff", "b"), 0.5))
    off = C.Claim("n", "SpectraFM", "T1", "s", "", C.Below(C.Row("spectrafm", "teff", "c"), 1.0))
    t = C.judge_claims(s, tasks_run={"x"}, claims=(ratio, order, floor, half, off)).set_index("claim")
    assert t.loc["r", "verdict"] == V.REPRODUCED and t.loc["r", "ours"] == "0.9 [0.85, 0.96]"
    assert t.loc["o", "verdict"] == V.REPRODUCED and t.loc["o", "ours"] == "90 [85, 95] vs 120 [110, 130]"
    assert t.loc["f", "verdict"] == V.INCONCLUSIVE  # 1.1-1.3 straddles 1.25
    assert t.loc["h", "verdict"] == V.NOT_REPRODUCED  # 85-95 is above 0.5 x 110-130
    assert t.loc["n", "verdict"] == V.NOT_RUN
    assert list(t.reset_index().columns) == C.CLAIM_COLUMNS


def test_a_claim_whose_row_is_missing_from_a_task_that_ran_is_an_error():
    s = _summary([{"task": "x", "target": "teff", "metric": "a", "model": 1.0}])
    claim = C.Claim("m", "LB23", "Fig", "s", "", C.Below(C.Row("x", "teff", "typo"), 1.0))
    with pytest.raises(ValueError, match="claim m: no row"):
        C.judge_claims(s, tasks_run={"x"}, claims=(claim,))


def test_the_registry_covers_the_papers_findings_the_issue_names():
    ids = {c.id for c in C.CLAIMS}
    for needed in (
        "a_teff_vs_xgboost",
        "a_logg_vs_xgboost",
        "a_m_h_vs_xgboost",
        "b_ebv",
        "b_distance",
        "d_bp_from_rp",
        "f_extinction_curve",
        "h_rp0_params",
        "h_rp0_params_2mass",
        "h_rp0_params_2mass_bprp",
        "g_bprp_never_requested",
        "spectrafm_table1_teff",
        "spectrafm_fe_poor_finetune_fe_vs_finetune_real",
        "spectrafm_fe_poor_finetune_real_vs_pretrain",
        "spectrafm_fe_poor_finetune_fe_vs_fcnn",
        "spectrafm_fe_poor_direct_vs_pretrain",  # the ablation: the [Fe/H] fine-tune straight from the base
        "spectrafm_fe_poor_direct_similar",
        "spectrafm_attention_fe_h",
        "mass_age_mass_vs_xgboost",
        "mass_age_age_vs_xgboost",
    ):
        assert needed in ids
    from pipeline.evaluate.registry import TASKS

    for c in C.CLAIMS:
        assert c.tasks <= set(TASKS), c.id
        assert c.paper in ("LB23", "SpectraFM", "Zhang26") and c.paper_value


def test_the_claims_table_renders_in_the_report_without_restructuredtext_errors(tmp_path):
    """The report's front page shows claims.csv through a csv-table: no cell may be read as RST markup
    (|x| is a substitution there)."""
    import io

    from docutils.core import publish_doctree

    rows = []
    for c in C.CLAIMS:
        for r in c.test.rows():
            rows.append({"task": r.task, "target": r.target, "metric": r.metric, "model": 1.0, "model_lo": 0.9, "model_hi": 1.1})
    s = _summary(rows).drop_duplicates(["task", "target", "metric"])
    path = tmp_path / "claims.csv"
    C.judge_claims(s).to_csv(path, index=False)
    stream = io.StringIO()
    publish_doctree(
        f".. csv-table::\n   :file: {path}\n   :header-rows: 1\n",
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream},
    )
    assert not stream.getvalue(), stream.getvalue()


def test_the_readme_block_is_written_from_the_findings():
    s = _summary([RATIO_ROW])
    claim = C.Claim("r", "LB23", "Fig. 4", "the model beats XGBoost", "0.93x", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0), "the order")
    table = C.judge_claims(s, claims=(claim,))
    seeds = pd.DataFrame(
        {
            "claim": ["r"],
            "seed0_verdict": [V.REPRODUCED],
            "seed1_verdict": [V.REPRODUCED],
            "seed2_verdict": [V.INCONCLUSIVE],
            "seed_std": [0.031],
            "n_reproduced": [2],
            "n_seeds": [3],
            "seeds_verdict": [V.INCONCLUSIVE],
        }
    )
    md = F.markdown_table(F.findings_table(table, seeds, table))
    row = (
        "| LB23 | Fig. 4 | the model beats XGBoost | 0.93x | ratio < 1 (the order) | 0.9 [0.85, 0.96], reproduced "
        "| R R I (2 of 3; std 0.031) | 0.9 [0.85, 0.96], reproduced | mixed |"
    )
    assert row in md, md
    assert md.endswith("0 reproduced, 0 not reproduced, 1 mixed, 0 unconfirmed, 0 not run of 1 claims.")
    text = f"intro\n{F.README_START}\nold\n{F.README_END}\nrest\n"
    assert F.replace_block(text, md) == f"intro\n{F.README_START}\n{md}\n{F.README_END}\nrest\n"
    with pytest.raises(ValueError, match="no block"):
        F.replace_block("no markers", md)


def test_a_finding_needs_the_default_sky_the_seeds_and_the_confirmation_sky_to_agree():
    R, N, I, X = V.REPRODUCED, V.NOT_REPRODUCED, V.INCONCLUSIVE, V.NOT_RUN
    assert F.overall_verdict(R, R, R) == R and F.overall_verdict(N, N, N) == N
    for three in ((R, R, N), (R, I, R), (N, N, R), (I, I, I), (R, R, I)):
        assert F.overall_verdict(*three) == F.MIXED, three
    assert F.overall_verdict(R, None, R) == F.UNCONFIRMED and F.overall_verdict(R, R, "") == F.UNCONFIRMED
    assert F.overall_verdict(R, X, R) == F.UNCONFIRMED and F.overall_verdict(X, R, R) == X
    # the table: a claim missing from the confirmation sky's table is unconfirmed, the others judged
    s = _summary([RATIO_ROW])
    claims = (
        C.Claim("r", "LB23", "F", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0)),
        C.Claim("q", "LB23", "F", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 0.5)),
    )
    table = C.judge_claims(s, claims=claims)
    seeds = pd.DataFrame({"claim": ["r", "q"], "seed_std": [0.1, 0.1], "n_reproduced": [3, 0], "n_seeds": [3, 3]})
    seeds["seeds_verdict"] = [R, N]
    out = F.findings_table(table, seeds, table[table.claim == "r"]).set_index("claim")
    assert out.loc["r", "verdict"] == R and out.loc["q", "verdict"] == F.UNCONFIRMED
    assert F.findings_table(table).verdict.tolist() == [F.UNCONFIRMED, F.UNCONFIRMED]


def test_the_readme_holds_a_claims_block():
    from conftest import REPO

    text = (REPO / "README.md").read_text()
    assert F.README_START in text and F.README_END in text


def test_variants_of_the_base_model_and_which_one_is_the_base_model_itself():
    from pipeline.evaluate.variants import is_base, scaling_variants, seed_variants

    train = {"seed": 0, "preset": "small", "epochs_per_cycle": 24, "cycles": 1}
    seeds = seed_variants([0, 1, 2])
    assert seeds == {"seed0": {"seed": 0}, "seed1": {"seed": 1}, "seed2": {"seed": 2}}
    assert is_base(train, seeds["seed0"]) and not is_base(train, seeds["seed1"])
    scaling = scaling_variants({"epochs": [6, 24], "presets": ["small", "medium"], "preset_epochs": {"medium": [6]}})
    assert list(scaling) == ["small_e6", "small_e24", "medium_e6"]
    assert is_base(train, scaling["small_e24"]) and not is_base(train, scaling["small_e6"]) and not is_base(train, scaling["medium_e6"])
    assert not is_base({**train, "epochs_per_cycle": 12, "cycles": 2}, scaling["small_e24"])  # 2 x 12 is not one cycle of 24
    wider = scaling_variants({"epochs": [6], "presets": ["small", "medium"], "preset_train": {"medium": {"lr": 1e-3}}})
    assert wider["medium_e6"] == {"preset": "medium", "epochs_per_cycle": 6, "cycles": 1, "lr": 1e-3} and "lr" not in wider["small_e6"]


def test_seed_spread_by_hand():
    from pipeline.evaluate.variants import seed_spread

    def table(v, verdict):
        return pd.DataFrame(
            [{"claim": "c", "paper": "LB23", "where": "F", "test": "ratio < 1", "value": v, "ours": f"{v}", "verdict": verdict}]
        )

    out = seed_spread({0: table(0.9, V.REPRODUCED), 1: table(1.1, V.INCONCLUSIVE), 2: table(1.0, V.INCONCLUSIVE)}).iloc[0]
    assert out["mean"] == pytest.approx(1.0) and out["seed_std"] == pytest.approx(0.1)  # sample std of 0.9, 1.0, 1.1
    assert out["n_seeds"] == 3 and out["n_reproduced"] == 1 and out["seed1"] == 1.1
    assert out["seeds_verdict"] == V.INCONCLUSIVE  # one seed's luck is not a reproduction


def test_the_verdict_over_seeds_needs_every_seed():
    R, N, I = V.REPRODUCED, V.NOT_REPRODUCED, V.INCONCLUSIVE
    assert F.seeds_verdict([R, R, R]) == R and F.seeds_verdict([N, N]) == N
    assert F.seeds_verdict([R, R, N]) == I and F.seeds_verdict([R, I, R]) == I and F.seeds_verdict([N, I]) == I
    assert F.seeds_verdict([R, V.NOT_RUN]) == R and F.seeds_verdict([V.NOT_RUN]) == V.NOT_RUN


def test_a_seed_variant_retrains_spectrafm_with_its_seed_unless_it_is_the_default_runs():
    from pipeline.evaluate.variants import SPECTRAFM_SEED_DEFAULT, spectrafm_seeded
    from pipeline.spectrafm.train import StageConfig

    assert SPECTRAFM_SEED_DEFAULT == StageConfig().seed  # the one default, restated where torch is not imported
    cfg = {"stages": {"pretrain": {"epochs": 2}, "finetune_fe": {"init": "pretrain", "n_stars": 100}}, "fcnn": {"epochs": 3}}
    assert spectrafm_seeded(cfg, SPECTRAFM_SEED_DEFAULT) is None  # the default run's SpectraFM is that seed's
    one = spectrafm_seeded(cfg, 1)
    assert one["stages"] == {"pretrain": {"epochs": 2, "seed": 1}, "finetune_fe": {"init": "pretrain", "n_stars": 100, "seed": 1}}
    assert one["fcnn"] == {"epochs": 3, "seed": 1} and cfg["stages"]["pretrain"] == {"epochs": 2}  # the config is left alone
    # a config that seeds its stages itself: that seed is the default run's, any other stage seed differing is not
    seeded = {"stages": {k: {**v, "seed": 5} for k, v in cfg["stages"].items()}, "fcnn": {}}
    assert spectrafm_seeded(seeded, 5) is None and spectrafm_seeded(seeded, 0) is not None
    assert spectrafm_seeded({**seeded, "fcnn": {"seed": 6}}, 5) is not None


def test_scaling_table_budget_and_crossings(tmp_path):
    import json

    from pipeline.evaluate.variants import budget, crossings, scaling_table

    d = tmp_path / "m"
    d.mkdir()
    pd.DataFrame({"epoch": [0, 1], "seconds": [10.0, 20.0], "stars_per_s": [100.0, 50.0], "val_loss": [0.5, -0.2]}).to_csv(
        d / "history.csv"
    )
    (d / "config.json").write_text(json.dumps({"n_parameters": 1000}))
    b = budget(d)
    assert b["star_samples"] == 2000.0 and b["epochs"] == 2 and b["compute_flop"] == 6.0 * 1000 * 2000 and b["best_val_loss"] == -0.2

    def summary(ratio):
        return _summary(
            [
                {
                    "task": "spectra_to_parameters",
                    "target": "teff",
                    "metric": "robust_scatter xp30+colours",
                    "model": 1.0,
                    "model_over_xgboost": ratio,
                    "ratio_lo": ratio - 0.05,
                    "ratio_hi": ratio + 0.05,
                }
            ]
        )

    points = {
        f"small_e{e}": (summary(r), {"star_samples": float(s), "epochs": e}, "small")
        for e, s, r in ((6, 1e5, 1.4), (12, 1e6, 1.2), (24, 1e7, 0.9))
    }
    points["medium_e6"] = (summary(1.3), {"star_samples": 1e5, "epochs": 6}, "medium")
    points["medium_e12"] = (summary(1.28), {"star_samples": 1e6, "epochs": 12}, "medium")
    t = scaling_table(points)
    assert set(t.quantity) == {"task a Teff / XGBoost"} and len(t) == 5
    c = crossings(t).set_index("preset")
    # 1.2 at 1e6 and 0.9 at 1e7: the line 1 is crossed 2/3 of the way in log: 10**(6 + 2/3)
    assert c.loc["small", "crossing_star_samples"] == pytest.approx(10 ** (6 + 2 / 3))
    assert c.loc["medium", "verdict"] == "above the line, flat at the largest budgets"
    one = crossings(scaling_table({"large_e6": (summary(1.3), {"star_samples": 1e5, "epochs": 6}, "large")}))
    assert one.verdict.iloc[0] == "above the line at its one budget (no curve)"


def test_experiments_are_named_variants_set_beside_the_base_model(tmp_path):
    from pipeline.evaluate.variants import experiment_variants, write_experiments

    assert experiment_variants({"resident_memory": {"resident": "memory"}}) == {"exp_resident_memory": {"resident": "memory"}}
    rows = [
        {"claim": "c", "paper": "LB23", "where": "F", "test": "ratio < 1", "value": v, "ours": f"{v}", "verdict": V.INCONCLUSIVE}
        for v in (1.1, 0.9)
    ]
    for name, row in zip(("base", "exp_x"), rows):
        pd.DataFrame([row]).to_csv(tmp_path / f"{name}.csv", index=False)
    t = write_experiments({n: tmp_path / f"{n}.csv" for n in ("base", "exp_x")}, tmp_path / "out.csv").iloc[0]
    assert t["base"] == 1.1 and t["exp_x"] == 0.9 and t["exp_x_verdict"] == V.INCONCLUSIVE


def test_a_readme_whose_claims_block_is_not_the_runs_is_caught(tmp_path, capsys):
    """`python -m pipeline claims --check README.md`: the README's generated table against a run's
    claims.csv; written by --readme it passes, a changed verdict (or a hand edit) fails, naming both."""
    from pipeline.__main__ import main

    s = _summary([RATIO_ROW])
    claim = C.Claim("r", "LB23", "Fig. 4", "the model beats XGBoost", "0.93x", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0))
    (tmp_path / "eval").mkdir()
    C.judge_claims(s, claims=(claim,)).to_csv(tmp_path / "eval/claims.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{F.README_START}\nold\n{F.README_END}\n")
    assert main(["claims", "--results", str(tmp_path), "--check", str(readme)]) == 2
    assert "is not the one of" in capsys.readouterr().err
    assert main(["claims", "--results", str(tmp_path), "--readme", str(readme)]) == 0
    assert main(["claims", "--results", str(tmp_path), "--check", str(readme)]) == 0
    readme.write_text(readme.read_text().replace("unconfirmed", "reproduced"))  # a hand edit
    assert main(["claims", "--results", str(tmp_path), "--check", str(readme)]) == 2


def test_an_ordering_with_a_paired_ratio_is_judged_on_the_ratio_of_the_same_stars():
    # side by side the two intervals overlap (inconclusive); the paired ratio over the same stars lies below 1
    s = _summary(
        [
            {"task": "x", "target": "fe_h", "metric": "a", "model": 95, "model_lo": 85, "model_hi": 105},
            {"task": "x", "target": "fe_h", "metric": "b", "model": 100, "model_lo": 90, "model_hi": 110},
            {"task": "x", "target": "fe_h", "metric": "a / b", "model": 0.95, "model_lo": 0.92, "model_hi": 0.98},
            {"task": "x", "target": "fe_h", "metric": "b / a", "model": 1.05, "model_lo": 1.02, "model_hi": 1.09},
        ]
    )
    a, b = C.Row("x", "fe_h", "a"), C.Row("x", "fe_h", "b")
    side = C.Claim("side", "SpectraFM", "Fig", "s", "", C.Less(a, b))
    paired = C.Claim("paired", "SpectraFM", "Fig", "s", "", C.Less(a, b, paired=C.Row("x", "fe_h", "a / b")))
    backwards = C.Claim("back", "SpectraFM", "Fig", "s", "", C.Less(b, a, paired=C.Row("x", "fe_h", "b / a")))
    t = C.judge_claims(s, tasks_run={"x"}, claims=(side, paired, backwards)).set_index("claim")
    assert t.loc["side", "verdict"] == V.INCONCLUSIVE
    assert (
        t.loc["paired", "verdict"] == V.REPRODUCED and t.loc["paired", "ours"] == "95 [85, 105] vs 100 [90, 110]; ratio 0.95 [0.92, 0.98]"
    )
    assert t.loc["back", "verdict"] == V.NOT_REPRODUCED
    assert t.loc["paired", "value"] == pytest.approx(0.95)  # the number judged: the ratio


def test_paired_ratio_of_two_estimators_on_the_same_stars():
    from pipeline.evaluate.intervals import PerStar, bootstrap_interval, paired_ratio, rms

    rng = np.random.default_rng(3)
    hard = rng.standard_normal(400) * rng.uniform(0.2, 3.0, 400)  # stars hard for both estimators
    a, b = PerStar(0.9 * hard + 0.05 * rng.standard_normal(400), rms), PerStar(hard, rms)
    ratio = paired_ratio(a, b)
    assert ratio.value() == pytest.approx(a.value() / b.value())
    lo, hi = bootstrap_interval(ratio)
    a_lo, a_hi = bootstrap_interval(a)
    b_lo, b_hi = bootstrap_interval(b)
    assert hi < 1.0 and lo > 0.85  # a is 10% better on the same stars, and the paired interval says so ...
    assert a_hi > b_lo  # ... where the two intervals side by side overlap
    with pytest.raises(ValueError, match="same stars"):
        paired_ratio(a, PerStar(hard[:300], rms))


def test_paired_ratio_counts_only_the_stars_both_answered():
    rng = np.random.default_rng(11)
    a = rng.normal(0, 1, 400)
    b = 2 * a  # b is exactly twice as far off on every star ...
    b[:100] = np.nan  # ... but did not answer a quarter of them
    a_far = a.copy()
    a_far[:100] *= 50  # and those are where a is far off: they must not count
    ratio = paired_ratio(PerStar(a_far), PerStar(b))
    assert ratio.value() == pytest.approx(0.5)
    assert bootstrap_interval(ratio) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="same stars"):
        paired_ratio(PerStar(a), PerStar(b[:300]))


def test_fig12_is_judged_as_a_switch_both_sides_needed():
    """Teff's weight above E(B-V)'s at zero extinction AND E(B-V)'s above Teff's when it is high: a
    shift of a few per cent towards E(B-V) that leaves Teff ahead at high extinction is no switch."""
    claim = next(c for c in C.CLAIMS if c.id == "i_rp0_attention_switch")

    def rows(zero, high):
        return _summary(
            [
                {"task": "attention", "target": "rp0", "metric": "teff - logebv weight at zero E(B-V)", **zero},
                {"task": "attention", "target": "rp0", "metric": "logebv - teff weight at high E(B-V)", **high},
            ]
        )

    up = {"model": 0.2, "model_lo": 0.1, "model_hi": 0.3}
    down = {"model": -0.2, "model_lo": -0.3, "model_hi": -0.1}
    near = {"model": 0.0, "model_lo": -0.1, "model_hi": 0.1}
    verdict = lambda zero, high: C.judge_claims(rows(zero, high), claims=(claim,)).verdict.iloc[0]  # noqa: E731
    assert verdict(up, up) == V.REPRODUCED
    assert verdict(up, down) == V.NOT_REPRODUCED  # Teff still ahead at high extinction
    assert verdict(down, up) == V.NOT_REPRODUCED
    assert verdict(up, near) == V.INCONCLUSIVE


def test_similar_is_the_papers_own_band_and_every_claim_says_where_its_threshold_comes_from():
    ablation = next(c for c in C.CLAIMS if c.id == "spectrafm_fe_poor_direct_similar")
    assert (ablation.test.lo, ablation.test.hi) == pytest.approx((0.232 / 0.256, 0.256 / 0.232))
    row = {"task": "spectrafm", "target": "fe_h", "metric": "RMSE fe_h_poor: finetune_fe_direct / finetune_fe"}
    s = _summary([{**row, "model": 1.15, "model_lo": 1.09, "model_hi": 1.22}])
    assert C.judge_claims(s, claims=(ablation,)).verdict.iloc[0] == V.INCONCLUSIVE  # 1.15 [1.09, 1.22]: not inside [0.906, 1.10]
    fig13 = next(c for c in C.CLAIMS if c.id == "h_rp0_params")
    assert fig13.test.hi == pytest.approx(1 / 0.77)
    for c in C.CLAIMS:
        assert c.basis, f"claim {c.id} does not say where its threshold comes from"


def test_fig14_and_spectrafm_attention_are_judged_against_a_yardstick():
    ids = {c.id: c for c in C.CLAIMS}
    assert ids["g_bprp_never_requested"].test.row.of == "ratio"  # against the xp32 expert
    assert "other elements' lines" in ids["spectrafm_attention_o_fe"].test.row.metric


def test_the_readme_and_docs_findings_are_the_recorded_runs():
    """README.md's claims block and docs/findings.md's block are written from the recorded findings
    (docs/recorded/findings.csv, `python -m pipeline claims --results results --record docs/recorded
    --readme README.md --doc docs/findings.md`): neither is typed by hand nor left stale."""
    from conftest import REPO
    from pipeline.__main__ import main

    recorded = REPO / "docs/recorded"
    if not (recorded / F.RECORDED_FINDINGS).is_file():
        pytest.skip("no recorded findings (docs/recorded/findings.csv) yet")
    args = ["claims", "--record", str(recorded), "--check", str(REPO / "README.md"), "--doc", str(REPO / "docs/findings.md")]
    assert main(args) == 0


def test_the_doc_block_lists_what_keeps_a_claim_out_and_the_changed_tests(tmp_path):
    s = _summary([RATIO_ROW])
    claim = C.Claim("b_ebv", "LB23", "Fig. 5", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0), "b")
    table = C.judge_claims(s, claims=(claim,))
    seeds = pd.DataFrame({"claim": ["b_ebv"], "seed0_verdict": [V.REPRODUCED], "seed1_verdict": [V.NOT_REPRODUCED]})
    seeds = seeds.assign(seed_std=0.1, n_reproduced=1, n_seeds=2, seeds_verdict=V.INCONCLUSIVE)
    before = pd.DataFrame({"claim": ["b_ebv"], "ours": ["1.25 [1.19, 1.32]"], "verdict": [V.INCONCLUSIVE]})
    doc = F.findings_doc(F.findings_table(table, seeds, table), before)
    assert "0 reproduced, 0 not reproduced, 1 mixed" in doc
    assert (
        "| `b_ebv` | LB23 Fig. 5 | mixed | default sky reproduced; seeds reproduced, not reproduced; confirmation sky reproduced |  |"
        in doc
    )
    assert "| 1.25 [1.19, 1.32], inconclusive | 0.9 [0.85, 0.96], reproduced |" in doc
    crossings = pd.DataFrame({"quantity": ["task a Teff / XGBoost"], "preset": ["small"], "verdict": ["above the line, flat"]})
    assert F.scaling_quantity_of_claims()["a_teff_vs_xgboost"] == "task a Teff / XGBoost"
    a = C.Claim("a_teff_vs_xgboost", "LB23", "Fig. 4", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 0.5), "b")
    with_curve = F.findings_doc(F.findings_table(C.judge_claims(s, claims=(a,))), None, crossings)
    assert "| unconfirmed | the seeds and the confirmation sky not run | above the line, flat |" in with_curve
    text = f"x\n{F.DOC_START}\nold\n{F.DOC_END}\n"
    assert F.replace_block(text, doc, F.DOC_START, F.DOC_END) == f"x\n{F.DOC_START}\n{doc}\n{F.DOC_END}\n"


def test_a_spectrafm_experiment_overrides_every_stage_and_retrains_only_what_it_changes():
    from pipeline.evaluate.variants import SPECTRAFM_STAGE_DEFAULTS, experiment_variants, spectrafm_experiments, trains_its_own
    from pipeline.spectrafm.plan import stage_plan
    from pipeline.spectrafm.train import StageConfig

    assert SPECTRAFM_STAGE_DEFAULTS == {k: getattr(StageConfig(), k) for k in SPECTRAFM_STAGE_DEFAULTS}
    sfm = {
        "stages": {
            "pretrain": {"epochs": 2},
            "finetune_real": {"init": "pretrain"},
            "finetune_fe": {"init": "finetune_real", "keep": "best", "validation": "all"},
        },
        "fcnn": {"epochs": 3},
    }
    exps = {"a": {"resident": "stream"}, "v": {"spectrafm": {"validation": "stage"}}, "m": {"spectrafm": {"mix": "store"}}}
    assert experiment_variants(exps) == {"exp_a": {"resident": "stream"}, "exp_v": {}, "exp_m": {}}
    runs = spectrafm_experiments(exps, sfm)
    assert set(runs) == {"exp_v", "exp_m"}
    default = stage_plan(sfm["stages"])
    v, m = stage_plan(runs["exp_v"]["stages"]), stage_plan(runs["exp_m"]["stages"])
    # validation: stage is already the pre-training's and the observed fine-tune's (the default): theirs are reused
    assert [trains_its_own(v, default, s) for s in ("pretrain", "finetune_real", "finetune_fe", "finetune_fe_direct")] == [
        False,
        False,
        True,
        True,
    ]
    assert all(trains_its_own(m, default, s) for s in m)  # the mix changes the pre-training, and every stage after it


def test_every_models_validation_figures_are_tabled_for_the_choices(tmp_path):
    import json

    d = tmp_path / "models/small"
    d.mkdir(parents=True)
    pd.DataFrame({"epoch": [0, 1], "val_loss": [0.5, 0.2], "seconds": [1, 1], "stars_per_s": [1, 1]}).to_csv(d / "history.csv", index=False)
    (d / "config.json").write_text(json.dumps({"train": {"lr": 0.002, "epochs_per_cycle": 2, "seed": 0}}))
    (d / "heldout.json").write_text(json.dumps({"split": "val", "targets": {"teff": {"robust_scatter_vs_labels": 55.0}}}))
    t = F.validation_table(tmp_path).iloc[0]
    assert (t.model, t.epochs, t.val_loss_last, t.val_loss_best, t.lr, t.check_split, t.teff_scatter) == (
        "small",
        2,
        0.2,
        0.2,
        0.002,
        "val",
        55.0,
    )
    doc = F.findings_doc(F.findings_table(C.judge_claims(_summary([RATIO_ROW]), claims=())), validation=F.validation_table(tmp_path))
    assert "| small | 0.002 | 2 | 0.2 | 0.2 | 55 |" in doc
