"""Rule sky: build the mock sky into the folder of its outputs."""
from pathlib import Path

from pipeline.logs import setup
from pipeline.sky.build import SkyConfig, build_sky

log = setup(snakemake.log[0])  # noqa: F821
out_dir = Path(snakemake.output.allstar).parent  # noqa: F821
manifest = build_sky(SkyConfig.from_dict(snakemake.params.sky), out_dir)  # noqa: F821
log.info("mock sky counts: %s", manifest["counts"])
