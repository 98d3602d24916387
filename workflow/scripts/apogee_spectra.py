"""Rule apogee_spectra (real data): the SpectraFM pixel store from aspcapStar files, and the line list."""

from pathlib import Path

from pipeline.spectrafm.aspcap import feature_list
from pipeline.spectrafm.store import build_real_store
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    s = sm.params.split or {}
    folder = Path(sm.input.aspcapstar[0])
    files = sorted(folder.glob("aspcapStar-*.fits")) if folder.is_dir() else [folder]
    build_real_store(
        files,
        sm.input.allstar,
        sm.output.store,
        split=(s.get("train", 0.8), s.get("val", 0.1), s.get("test", 0.1)),
        split_seed=s.get("seed", 8),
    )
    feature_list().to_csv(sm.output.lines, index=False)
