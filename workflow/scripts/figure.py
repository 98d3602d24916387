"""Rule figure: one PNG drawn from a task's cached predictions and metrics."""
from pipeline.evaluate.figures import draw
from pipeline.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
draw(sm.wildcards.task, sm.wildcards.figure, sm.input.predictions, sm.input.metrics, sm.output[0], dpi=sm.params.dpi)
