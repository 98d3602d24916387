"""Rule scaling_figure: results/eval/scaling.csv -> scaling.png (a restyle retrains nothing)."""

import pandas as pd

from pipeline.evaluate.variants import draw_scaling
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    draw_scaling(pd.read_csv(sm.input.table), sm.output[0], dpi=sm.params.dpi)
