"""What a change reruns: nothing when nothing changed, exactly the rules that a setting, a figure's
style or an edit of a module reaches (dry runs of the tiny workflow)."""

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from conftest import run_snakemake as _run
from conftest import scheduled as _scheduled


@pytest.mark.slow
def test_unchanged_rerun_schedules_nothing(tiny_run):
    _, args = tiny_run
    proc = _run(*args, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_restyling_a_figure_reruns_only_its_figure_rule(tiny_run):
    """Editing the figure code schedules the figure jobs and nothing upstream (no evaluation, no training)."""
    import os

    _, args = tiny_run
    code = REPO / "src/pipeline/evaluate/figures/common.py"
    text, st = code.read_text(), code.stat()
    try:
        code.write_text(text + "\n# a restyle\n")  # an edit: Snakemake notices changed input content
        proc = _run(*args, "--dry-run")
    finally:
        code.write_text(text)
        os.utime(code, (st.st_atime, st.st_mtime))
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = _scheduled(proc.stdout + proc.stderr)
    figures = yaml.safe_load((REPO / "workflow/report/figures.yaml").read_text())
    assert jobs.pop("figure") == sum(len(f) for f in figures.values())
    from pipeline.evaluate.figures import SUMMARY_FIGURES

    assert jobs.pop("catalog_all_figure") == len(SUMMARY_FIGURES)  # the catalogue summary's figures
    assert jobs.pop("claims_figure") == 1  # the claims' forest plot is a figure too
    assert set(jobs) <= {"all"}, jobs


def _dry_run_jobs(args, overrides: dict | None = None, tmp_path=None, edit: Path | None = None) -> dict:
    """Rule -> job count that a dry run schedules after a config override and/or an edit of a module."""
    import os

    extra = []
    if overrides:
        cfg = tmp_path / "override.yaml"
        cfg.write_text(yaml.safe_dump(overrides))
        extra = [str(cfg)]  # a later --configfile entry wins, nested keys merge
    text, st = (edit.read_text(), edit.stat()) if edit else (None, None)
    try:
        if edit:
            edit.write_text(text + "\n# an edit\n")
        proc = _run(*args, *extra, "--dry-run")
    finally:
        if edit:
            edit.write_text(text)
            os.utime(edit, (st.st_atime, st.st_mtime))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _scheduled(proc.stdout + proc.stderr)


SKY_RULES = {"sky", "sky_realism", "sky_difficulty"}


@pytest.mark.slow
def test_changing_an_evaluation_setting_reruns_only_that_evaluation(tiny_run, tmp_path):
    _, args = tiny_run
    jobs = _dry_run_jobs(args, {"evaluate": {"extinction_curve": {"rms_bar": 0.5}}}, tmp_path)
    assert jobs == {"evaluate": 1, "figure": 1, "summary": 1, "claims_figure": 1, "all": 1}, jobs  # the claims are redrawn


@pytest.mark.slow
def test_changing_a_quality_cut_reruns_the_catalog_and_after_but_not_the_sky(tiny_run, tmp_path):
    _, args = tiny_run
    jobs = _dry_run_jobs(args, {"catalog": {"ruwe_max": 1.3}}, tmp_path)
    assert {"catalog", "catalog_validation", "tokens", "train", "model_check", "baselines", "evaluate", "figure", "summary"} <= set(jobs), (
        jobs
    )
    assert not SKY_RULES & set(jobs), jobs


@pytest.mark.slow
def test_changing_the_model_code_reruns_training_and_what_depends_on_it(tiny_run, tmp_path):
    _, args = tiny_run
    jobs = _dry_run_jobs(args, edit=REPO / "src/pipeline/model/model.py")
    assert {"train", "model_check", "evaluate", "figure", "summary"} <= set(jobs), jobs
    assert not (SKY_RULES | {"catalog", "catalog_validation", "tokens", "baselines"}) & set(jobs), jobs


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, rerun, kept",
    [
        ("evaluate/figures/common.py", {"figure"}, {"evaluate", "train", "catalog", "summary", "evaluate_spectrafm"}),
        (  # the robust statistics: the extinction Monte Carlo's too (the catalog), never the mock sky's build
            "stats.py",
            {"catalog", "tokens", "train", "baselines", "evaluate", "figure", "summary", "spectrafm_train", "sky_realism"},
            {"sky"},
        ),
        ("catalog/combined19.py", {"sky", "catalog"}, set()),
        ("io/atomic.py", {"sky", "catalog", "tokens", "train", "evaluate", "figure", "summary", "apogee_spectra"}, set()),
    ],
)
def test_an_edit_reruns_exactly_the_rules_whose_scripts_reach_the_module(tiny_run, module, rerun, kept):
    """Rerun decisions come from each script's import closure (pipeline.workflow.codedeps): an edit of a
    module reschedules the rules that run it (and what consumes their outputs), never the others."""
    _, args = tiny_run
    jobs = set(_dry_run_jobs(args, edit=REPO / "src/pipeline" / module))
    assert rerun <= jobs, (module, sorted(jobs))
    assert not kept & jobs, (module, sorted(kept & jobs))
    if module.startswith("evaluate/figures"):
        assert jobs == {"figure", "catalog_all_figure", "claims_figure", "all"}, jobs
