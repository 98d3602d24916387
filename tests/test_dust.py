from pathlib import Path

import numpy as np
import pytest

from pipeline.catalog.combined19 import DISTMODS, Combined19Map, write_combined19
from pipeline.sky.dust import Z_SUN_KPC, DustModel, build_map, line_of_sight_ebv


def test_line_of_sight_integral_of_a_plain_exponential_disc():
    # Towards the Galactic pole, with no structure and an infinite scale length, the column is
    # rho0 h exp(-z_sun/h) (1 - exp(-d/h)), worked out by hand.
    m = DustModel(ebv_per_kpc=0.5, h_r_kpc=1e9, h_z_kpc=0.1, flare_kpc=1e9, n_waves=0, bubble_radius_kpc=0.0)
    d = np.array([0.05, 0.1, 0.3, 2.0])
    got = line_of_sight_ebv(m, np.array([0.0]), np.array([90.0]), d, n_steps=4000)[0]
    want = 0.5 * 0.1 * np.exp(-Z_SUN_KPC / 0.1) * (1 - np.exp(-d / 0.1))
    np.testing.assert_allclose(got, want, rtol=2e-3)


def test_the_local_bubble_is_empty_and_its_wall_keeps_the_column():
    """Inside the cavity the column is exactly 0 (the catalog's ln E(B-V) floor); halfway through the
    wall it is half the disc's; beyond the wall it is the disc's column, as with no bubble."""
    kw = dict(ebv_per_kpc=0.5, h_r_kpc=1e9, h_z_kpc=0.1, flare_kpc=1e9, n_waves=0)
    bubble, plain = DustModel(**kw, bubble_radius_kpc=0.1, bubble_wall_kpc=0.05), DustModel(**kw, bubble_radius_kpc=0.0)
    d = np.array([0.05, 0.099, 0.125, 0.15, 0.3, 2.0])
    got, want = (line_of_sight_ebv(m, np.array([0.0]), np.array([90.0]), d, n_steps=4000)[0] for m in (bubble, plain))
    assert got[0] == 0.0 and got[1] == 0.0
    assert got[2] == pytest.approx(0.5 * want[2], rel=1e-9)
    np.testing.assert_allclose(got[3:], want[3:], rtol=1e-12)


def test_map_evaluation_equals_mwdust_combined19(tmp_path, monkeypatch):
    hpx, fit = build_map(DustModel(), nside=8)
    path = tmp_path / "combined19"
    path.mkdir()
    write_combined19(path / "combine19.h5", hpx, 8, fit)
    import sys

    import mwdust  # noqa: F401  (DUST_DIR is set in conftest)

    c19 = sys.modules["mwdust.Combined19"]

    monkeypatch.setattr(c19, "_combineddir", str(path))
    monkeypatch.setattr(c19, "dust_dir", str(Path(str(path)).parent))  # no download: the file is there
    dm = c19.Combined19()
    ours = Combined19Map.from_file(path / "combine19.h5")
    rng = np.random.default_rng(1)
    l, b = rng.uniform(0, 360, 50), rng.uniform(-60, 60, 50)
    d = 10 ** rng.uniform(-1.5, 1.5, 50)  # 30 pc to 30 kpc, beyond both ends of the grid
    np.testing.assert_allclose(ours.ebv(l, b, d), dm(l, b, d), rtol=1e-10, atol=1e-12)


def test_map_is_monotonic_in_distance_and_covers_the_grid():
    hpx, fit = build_map(DustModel(), nside=4)
    assert fit.shape == (12 * 16, DISTMODS.size)
    assert (np.diff(fit, axis=1) >= -1e-12).all()
    assert DISTMODS[0] == 4.0 and DISTMODS[-1] == pytest.approx(18.875)
