"""Rule apogee_spectra (mock sky): the mock's APOGEE spectra as the SpectraFM pixel store, and its line list."""

from pipeline.sky.apogee import SyntheticGap, build_mock_store, line_list
from pipeline.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    s = sm.params.split or {}
    m = dict(sm.params.mock)
    build_mock_store(
        sm.input.truth[0],
        sm.input.allstar,
        sm.output.store,
        n_stars=m.get("n_stars", 3000),
        metal_poor_fraction=m.get("metal_poor_fraction", 0.25),
        gap=SyntheticGap(**m.get("gap", {})),
        bad_pixel_fraction=m.get("bad_pixel_fraction", 0.02),
        split=(s.get("train", 0.8), s.get("val", 0.1), s.get("test", 0.1)),
        seed=m.get("seed", 8),
        split_seed=s.get("seed", 8),
    )
    line_list().to_csv(sm.output.lines, index=False)
