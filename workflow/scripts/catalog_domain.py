"""Rule catalog_domain: the training catalogue's ranges (G, BP-RP, each XP coefficient) for catalog_all."""

from pipeline.apply.catalogue import write_domain
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm):
    write_domain(sm.input.catalog, sm.output[0])
