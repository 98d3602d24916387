"""Rule sky_realism: mock medians and MAD-std beside the real training set's."""

from pathlib import Path

from pipeline.io.atomic import write_json
from pipeline.sky.report import realism_report
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    report = realism_report(Path(snakemake.input.allstar).parent, **snakemake.params.realism)  # noqa: F821
    write_json(report, snakemake.output[0])  # noqa: F821
    for name, row in report["quantities"].items():
        log.info(
            "%-10s mock %.4g / %.4g  real %.4g / %.4g  %s",
            name,
            row["mock_median"],
            row["mock_mad_std"],
            row["real_median"],
            row["real_mad_std"],
            "ok" if row["pass"] else "OUTSIDE BAR",
        )
