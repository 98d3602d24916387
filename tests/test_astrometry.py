import numpy as np
import pytest

from pipeline.gaia import photometry as gaia
from pipeline.sky import astrometry


def test_extra_zero_point_of_eq7():
    g = np.array([10.0, 13.0, 15.0, 17.0, 19.0])
    np.testing.assert_allclose(gaia.extra_zero_point_mas(g), [0.0, 0.0, 0.010, 0.020, 0.020])


def test_parallax_error_law():
    # sqrt(40 + 800 + 30) uas at G = 15; sqrt(40 + 800 z + 30 z^2) with z = 10^0.8 at G = 17
    assert astrometry.parallax_error_mas(np.array([15.0]))[0] == pytest.approx(np.sqrt(870) / 1000)
    z = 10**0.8
    assert astrometry.parallax_error_mas(np.array([17.0]))[0] == pytest.approx(np.sqrt(40 + 800 * z + 30 * z * z) / 1000)
    assert astrometry.parallax_error_mas(np.array([10.0]))[0] == astrometry.parallax_error_mas(np.array([13.0]))[0]


def test_gdr3_zero_point_matches_lindegren_for_a_typical_star():
    # Lindegren et al. (2021): about -0.02 to -0.04 mas for a G = 15, BP-RP ~ 1 star at low latitude.
    zp = astrometry.gdr3_zero_point_mas(np.array([15.0]), np.array([1.55]), np.array([np.nan]), np.array([10.0]), np.array([31]))
    assert -0.05 < zp[0] < -0.01
    none = astrometry.gdr3_zero_point_mas(np.array([15.0]), np.array([1.55]), np.array([np.nan]), np.array([10.0]), np.array([3]))
    assert np.isnan(none[0])


def test_source_ids_encode_healpix_and_are_unique():
    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500)
    ids = astrometry.make_source_ids(ra, dec, rng)
    assert np.unique(ids).size == ids.size
    import healpy

    hpx = healpy.ang2pix(4096, np.radians(90 - dec), np.radians(ra), nest=True)
    np.testing.assert_array_equal(ids // 2**35, hpx)


def test_twomass_designation():
    assert astrometry.twomass_designation(np.array([291.570602]), np.array([37.764648]))[0] == "2M19261694+3745527"
