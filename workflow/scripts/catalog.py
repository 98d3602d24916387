"""Rule catalog: raw survey files -> results/catalog/{catalog.parquet, counts.json}."""
from pathlib import Path

from pipeline.catalog.build import CatalogConfig, build_catalog, write_catalog
from pipeline.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
cat, counts = build_catalog(sm.input.allstar, sm.input.gaia_source, sm.input.xp, sm.params.dust_dir,
                            CatalogConfig.from_dict(sm.params.catalog), n_workers=sm.threads)
write_catalog(cat, counts, Path(sm.output.catalog).parent)
log.info("Table 1 counts: %s", {k: v for k, v in counts.items() if k != "cuts"})
