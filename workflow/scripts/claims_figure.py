"""Rule claims_figure: results/eval/claims.csv -> claims.png (the forest plot), claims.html (the readable table) and its fragment for the report's front page."""

import pandas as pd

from pipeline.evaluate.figures.claims import draw_forest, write_claims_page
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    claims = pd.read_csv(sm.input.claims, keep_default_na=False, na_values=[""])
    draw_forest(claims, sm.output.figure, dpi=sm.params.dpi)
    write_claims_page(claims, sm.output.table)
    write_claims_page(claims, sm.output.fragment, standalone=False, figure=sm.output.figure)
    run.log.info("claims figure and table: %d claims", len(claims))
