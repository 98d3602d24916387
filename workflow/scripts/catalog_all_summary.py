"""Rule catalog_all_summary: counts and rates of every partition's answers, and their sky maps."""

from pipeline.apply.summary import summarise
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm):
    summarise(list(sm.input.parts), sm.output.summary, sm.output.tables)
