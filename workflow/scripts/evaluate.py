"""Rule evaluate: one task of the evaluation suite -> metrics.json + predictions.parquet."""

from pathlib import Path

from pipeline.evaluate.tasks import run_task
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    truth = sm.input.truth[0] if sm.input.truth else None
    experts_dir = Path(sm.input.experts[0]).parent.parent if sm.input.experts else None
    run_task(
        sm.wildcards.task,
        Path(sm.input.model).parent,
        sm.input.tokens,
        sm.input.catalog,
        truth,
        experts_dir,
        Path(sm.output.metrics).parent,
        dict(sm.params.settings),
    )
