"""Rule sky_xp_all (mock sky): the all-sky XP population in the archive's bulk layout, and its truth."""

from pathlib import Path

from pipeline.sky.xp_all import XpAllConfig, build_xp_all
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    manifest = build_xp_all(XpAllConfig.from_dict(sm.params.xp_all), sm.input.dust, Path(sm.output.manifest).parent)
    run.log.info("xp_all counts: %s", manifest["counts"])
