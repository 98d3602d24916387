"""Hand-checked numbers for the small physical steps of the mock sky."""

import numpy as np
import pytest

from pipeline.sky import population, xp
from pipeline.sky.build import EBV_TRUE_PER_SFD, extinction_per_av
from pipeline.stats import median_mad_std, median_mad_std_along, robust_scatter


def test_g_flux_zero_point():
    # eq. 8: F_G = 10^((25.6873668671 - G)/2.5); G = 25.6873668671 gives 1 e-/s, 2.5 mag fainter 0.1
    from pipeline.gaia.photometry import g_flux_e_per_s

    np.testing.assert_allclose(g_flux_e_per_s(np.array([25.6873668671, 28.1873668671])), [1.0, 0.1])


def test_fitzpatrick_curve_is_normalised_at_v():
    assert extinction_per_av(np.array([549.0]))[0] == pytest.approx(1.0, abs=0.02)
    # A_H / A_V ~ 0.18 and A_K / A_V ~ 0.12 for R_V = 3.1 (Fitzpatrick 1999)
    assert extinction_per_av(np.array([1662.0]))[0] == pytest.approx(0.18, abs=0.03)
    assert extinction_per_av(np.array([2159.0]))[0] == pytest.approx(0.12, abs=0.03)
    assert EBV_TRUE_PER_SFD == 0.884  # eq. 10


def test_main_sequence_lifetime_and_its_inverse():
    assert population.main_sequence_lifetime_gyr(1.0, 0.0) == pytest.approx(10.0)
    assert population.main_sequence_lifetime_gyr(2.0, 0.0) == pytest.approx(10.0 * 2**-2.7)
    assert population.giant_mass_msun(10.0 * 2**-2.7, 0.0) == pytest.approx(2.0)


def test_rgb_is_hotter_for_metal_poor_and_massive_giants():
    base = population.rgb_teff_k(2.5, 1.2, 0.0)
    assert base == pytest.approx(4620.0)
    assert population.rgb_teff_k(2.5, 1.2, -1.0) > base and population.rgb_teff_k(2.5, 2.4, 0.0) == pytest.approx(base + 170)


def test_n_relevant_bases_counts_to_the_last_significant_coefficient():
    c = np.zeros((3, 55))
    e = np.ones((3, 55))
    c[0, :10] = 10.0  # last significant is index 9 -> 10 relevant
    c[1, [0, 30]] = 10.0  # a gap does not stop the count -> 31
    c[2, :] = 10.0  # the last two never count -> 53
    np.testing.assert_array_equal(xp.n_relevant_bases(c, e), [10, 31, 53])


def test_median_mad_std_of_a_gaussian():
    rng = np.random.default_rng(0)
    med, std = median_mad_std(rng.normal(3.0, 2.0, 200_000))
    assert med == pytest.approx(3.0, abs=0.02) and std == pytest.approx(2.0, rel=0.01)


def test_median_mad_std_along_rows_by_hand():
    # row 0: 1, 2, 3, 4, 100 -> median 3, |x - 3| = 2, 1, 0, 1, 97 -> MAD 1 -> 1.4826
    # row 1: 0, 1, NaN -> median 0.5, |x - 0.5| = 0.5, 0.5 -> 0.7413; row 2: all NaN -> NaN
    x = np.array([[1.0, 2, 3, 4, 100], [0, 1, np.nan, np.nan, np.nan], [np.nan] * 5])
    med, std = median_mad_std_along(x)
    np.testing.assert_allclose(med[:2], [3.0, 0.5])
    np.testing.assert_allclose(std[:2], [1.4826, 0.7413])
    assert np.isnan(med[2]) and np.isnan(std[2])
    np.testing.assert_allclose(robust_scatter(x[:2]), [1.4826, 0.7413])
