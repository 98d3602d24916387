"""Rule mass_age_catalog: catalog + DistMass-style VAC -> results/mass_age/catalog.parquet (+ mass, age columns)."""

import pandas as pd

from pipeline.io.atomic import write_json, write_parquet
from pipeline.vac.mass_age import MassAgeConfig, join_mass_age, read_mass_age_table
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    cfg = MassAgeConfig.from_dict(sm.params.mass_age)
    vac = read_mass_age_table(sm.input.vac, cfg.columns)
    table, counts = join_mass_age(pd.read_parquet(sm.input.catalog), vac, cfg.cuts)
    if counts["with mass and age tokens"] == 0:
        raise ValueError(
            f"{sm.input.vac}: no catalog star kept a mass and an age ({counts}); check mass_age.columns "
            "(APOGEE_ID must match the allStar's) and mass_age.cuts"
        )
    write_parquet(table, sm.output.catalog)
    write_json(counts, sm.output.counts)
    log.info("mass/age: %d of %d catalog stars have both tokens", counts["with mass and age tokens"], len(table))
