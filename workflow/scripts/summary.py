"""Rule summary: every task's headline metrics -> results/eval/summary.csv."""

from pipeline.evaluate.summary import write_summary
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    table = write_summary(list(sm.input.metrics), sm.output[0])
    log.info("summary: %d rows from %d tasks", len(table), len(sm.input.metrics))
