"""Rule sky: build the mock sky into the folder of its outputs."""

from pathlib import Path

from pipeline.sky.build import SkyConfig, build_sky
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    out_dir = Path(snakemake.output.allstar).parent  # noqa: F821
    manifest = build_sky(SkyConfig.from_dict(snakemake.params.sky), out_dir)  # noqa: F821
    log.info("mock sky counts: %s", manifest["counts"])
