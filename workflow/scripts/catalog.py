"""Rule catalog: raw survey files -> results/catalog/{catalog.parquet, counts.json}."""

from pathlib import Path

from pipeline.catalog.build import CatalogConfig, build_catalog, write_catalog
from pipeline.dask_cluster import dask_client
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    with dask_client(sm.config.get("dask")) as client:  # not a param: where it runs does not change the result
        cat, counts = build_catalog(
            sm.input.allstar,
            sm.input.gaia_source,
            sm.input.xp,
            sm.params.dust_dir,
            CatalogConfig.from_dict(sm.params.catalog),
            n_workers=sm.threads,
            client=client,
        )
    write_catalog(cat, counts, Path(sm.output.catalog).parent)
    log.info("Table 1 counts: %s", {k: v for k, v in counts.items() if k != "cuts"})
