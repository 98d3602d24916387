"""Bootstrap intervals of the summary's numbers, the claims registry and its verdicts."""

import math

import numpy as np
import pytest

from claims_helpers import RATIO_ROW, _summary
from pipeline.evaluate import claims as C
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
    assert list(t.reset_index().columns) == C.CLAIM_COLUMNS + C.LINE_COLUMNS
    # what each is judged against (the forest plot's lines): a ratio below 1; an ordering below
    # half the other's interval (110-130 -> 55-65), with that interval as the line's band
    assert (t.loc["r", "side"], t.loc["r", "line_lo"], t.loc["r", "line_hi"]) == ("below", 1.0, 1.0)
    assert (t.loc["h", "side"], t.loc["h", "line_lo"], t.loc["h", "line_hi"]) == ("below", 55.0, 65.0)


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


def test_the_reports_front_page_renders_the_claims_without_restructuredtext_errors(tmp_path):
    """workflow/report/workflow.rst (the report's front page) takes the claims table's fragment as raw
    HTML: it renders without a docutils warning, and no claim's text is read as markup."""
    import io

    import jinja2
    from docutils.core import publish_parts

    from conftest import REPO
    from pipeline.evaluate.figures.claims import write_claims_page

    rows = []
    for c in C.CLAIMS:
        for r in c.test.rows():
            rows.append({"task": r.task, "target": r.target, "metric": r.metric, "model": 1.0, "model_lo": 0.9, "model_hi": 1.1})
    s = _summary(rows).drop_duplicates(["task", "target", "metric"])
    (tmp_path / "eval").mkdir()
    write_claims_page(C.judge_claims(s), tmp_path / "eval/claims_table.html", standalone=False)

    class Snakemake:
        config = {"paths": {"results": str(tmp_path)}}

    text = jinja2.Template((REPO / "workflow/report/workflow.rst").read_text()).render(snakemake=Snakemake)
    stream = io.StringIO()
    html = publish_parts(text, writer_name="html", settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream})
    assert not stream.getvalue(), stream.getvalue()
    assert '<table id="claims">' in html["html_body"] and html["html_body"].count('class="mark"') == len(C.CLAIMS)


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
