"""Rule predict_catalog: one partition of XP sources -> results/catalog_all/<range>.parquet."""

from pipeline.apply.catalogue import CatalogAllConfig, predict_partition
from pipeline.catalog.build import CatalogConfig
from pipeline.io.atomic import write_parquet
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm):
    settings = {k: v for k, v in sm.params.settings.items() if k != "enabled"}
    table = predict_partition(
        list(sm.input.gaia_source),
        sm.input.xp,
        sm.input.model.rsplit("/", 1)[0],
        sm.input.domain,
        sm.params.dust_dir,
        CatalogAllConfig.from_dict(settings),
        CatalogConfig.from_dict(sm.params.catalog),
        n_workers=sm.threads,
    )
    write_parquet(table, sm.output[0])
