"""Rules figure and catalog_all_figure: one PNG drawn from a task's cached tables and metrics."""

from pipeline.evaluate.figures import draw
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    task = sm.params.get("task") or sm.wildcards.task  # catalog_all_figure names its task
    draw(task, sm.wildcards.figure, sm.input.predictions, sm.input.metrics, sm.output[0], dpi=sm.params.dpi)
