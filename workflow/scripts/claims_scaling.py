"""Rule scaling: each budget's summary and model history -> results/eval/scaling.csv and its crossings."""

from pathlib import Path

from pipeline.evaluate.variants import write_scaling
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    points = {}
    for summary, history in zip(sm.input.summaries, sm.input.histories):
        variant = Path(summary).parent.name
        points[variant] = (summary, Path(history).parent, sm.params.presets[variant])
    table = write_scaling(points, sm.output.table, sm.output.crossings)
    log.info("scaling: %d points x %d quantities", len(points), table.quantity.nunique())
