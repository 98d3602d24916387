"""The findings: each claim judged on the default sky, over the seeds and on the confirmation sky; the
variants of the base model behind them (seeds, scaling, experiments); the README's and docs' blocks written
from the recorded run."""

import pandas as pd
import pytest

from claims_helpers import RATIO_ROW, _summary
from pipeline.evaluate import claims as C
from pipeline.evaluate import findings as F
from pipeline.evaluate import verdicts as V


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


def test_the_doc_sets_each_experiment_beside_the_claims_it_moves():
    """A recipe experiment (e.g. SpectraFM's mix: store) is shown only for the claims whose value or
    verdict it changes, beside the default sky's."""
    s = _summary([RATIO_ROW])
    claims = (
        C.Claim("a", "LB23", "F", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 1.0)),
        C.Claim("b", "LB23", "F", "s", "v", C.Below(C.Row("x", "teff", "a", "ratio"), 2.0)),
    )
    table = C.judge_claims(s, claims=claims)
    moved = table.copy()
    moved.loc[0, ["ours", "verdict"]] = ["1.1 [1.05, 1.2]", V.NOT_REPRODUCED]
    lines = F.experiments_table(F.findings_table(table), {"mix_store": moved})
    assert lines[2] == "| claim | default sky | mix_store |"
    assert lines[4:] == ["| `a` | 0.9 [0.85, 0.96], reproduced | 1.1 [1.05, 1.2], not reproduced |"]
