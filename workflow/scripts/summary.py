"""Rule summary: every task's headline metrics -> results/eval/summary.csv."""
from pipeline.evaluate.summary import write_summary
from pipeline.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
table = write_summary(list(sm.input.metrics), sm.output[0])
log.info("summary: %d rows from %d tasks", len(table), len(sm.input.metrics))
