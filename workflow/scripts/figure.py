"""Rule figure: one PNG drawn from a task's cached predictions and metrics."""

from pipeline.evaluate.figures import draw
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    draw(sm.wildcards.task, sm.wildcards.figure, sm.input.predictions, sm.input.metrics, sm.output[0], dpi=sm.params.dpi)
