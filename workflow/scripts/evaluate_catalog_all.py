"""Rule evaluate_catalog_all (mock sky): the answers for XP sources without APOGEE against the truth."""

from pipeline.evaluate.catalog_all import evaluate_catalog_all
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm):
    evaluate_catalog_all(list(sm.input.parts), sm.input.truth, sm.output.metrics, sm.output.predictions)
