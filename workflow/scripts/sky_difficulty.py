"""Rule sky_difficulty: an XGBoost expert on the mock, against the paper's expert."""

from pathlib import Path

from pipeline.io.atomic import write_json
from pipeline.sky.report import difficulty_report
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    p = dict(snakemake.params.difficulty)  # noqa: F821
    xgb = p.pop("xgboost", {})
    report = difficulty_report(Path(snakemake.input.allstar).parent, n_jobs=snakemake.threads, **p, **xgb)  # noqa: F821
    write_json(report, snakemake.output[0])  # noqa: F821
    for name, row in report["targets"].items():
        log.info(
            "%-5s robust scatter %.4g (noise-free inputs: %.4g; paper expert %.4g, ratio %.2f) %s",
            name,
            row["robust_scatter_vs_labels"],
            row["robust_scatter_noise_free_vs_truth"],
            row["paper_expert"],
            row["ratio_to_paper"],
            "ok" if row["pass"] else "OUTSIDE BAR",
        )
