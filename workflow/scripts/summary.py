"""Rule summary: every task's headline metrics -> results/eval/summary.csv, and the papers' claims judged on them -> claims.csv."""

from pipeline.evaluate.summary import write_claims, write_summary
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    table = write_summary(list(sm.input.metrics), sm.output.summary)
    log.info("summary: %d rows from %d tasks", len(table), len(sm.input.metrics))
    claims = write_claims(table, list(sm.params.tasks), sm.output.claims)
    log.info("claims: %s", claims.verdict.value_counts().to_dict())
