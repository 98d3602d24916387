"""Rule apogee_spectra (real data): the SpectraFM pixel store from aspcapStar files, and the line list."""

from pathlib import Path

from pipeline.spectrafm.aspcap import feature_list
from pipeline.spectrafm.store import build_real_store, split_keywords
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    folder = Path(sm.input.aspcapstar[0])
    files = sorted(folder.glob("aspcapStar-*.fits")) if folder.is_dir() else [folder]
    build_real_store(
        files,
        sm.input.allstar,
        sm.output.store,
        **split_keywords(sm.params.split),
    )
    feature_list().to_csv(sm.output.lines, index=False)
