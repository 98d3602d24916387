"""Rule apogee_spectra: the SpectraFM pixel store, from the mock sky or from real aspcapStar files."""
from pathlib import Path

from pipeline.apogee.spectra import SyntheticGap, line_list
from pipeline.apogee.store import build_mock_store, build_real_store
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    s = sm.params.split or {}
    split = (s.get("train", 0.8), s.get("val", 0.1), s.get("test", 0.1))
    seed = s.get("seed", 8)  # of the split
    if sm.params.mock is not None:
        m = dict(sm.params.mock)
        build_mock_store(sm.input.truth[0], sm.input.allstar, sm.output.store, n_stars=m.get("n_stars", 3000),
                         metal_poor_fraction=m.get("metal_poor_fraction", 0.25), gap=SyntheticGap(**m.get("gap", {})),
                         bad_pixel_fraction=m.get("bad_pixel_fraction", 0.02), split=split, seed=m.get("seed", 8), split_seed=seed)
    else:
        folder = Path(sm.input.aspcapstar[0])
        files = sorted(folder.glob("aspcapStar-*.fits")) if folder.is_dir() else [folder]
        build_real_store(files, sm.input.allstar, sm.output.store, split=split, split_seed=seed)
    line_list().to_csv(sm.output.lines, index=False)
