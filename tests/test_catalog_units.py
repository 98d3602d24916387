"""Each physical step of the catalog stage against numbers worked out by hand."""

import numpy as np
import pytest

from pipeline.catalog import photometry as ph
from pipeline.catalog.build import CatalogConfig, label_quality, parallax_quality, percentile_clip, xp_quality
from pipeline.catalog.extinction import log_ebv_from_samples, parallax_samples_to_distance_kpc
from pipeline.catalog.zeropoint import FLAG_NO_SOLUTION, FLAG_OK, parallax_offset_mas
from pipeline.gaia.photometry import extra_zero_point_mas


def test_pseudo_luminosity_of_eq9():
    # parallax 1 mas, G = 10: 1 x 10^2 = 100; error 0.02 mas -> 2
    gf, gfe = ph.pseudo_luminosity(np.array([1.0]), np.array([0.02]), np.array([10.0]))
    assert gf[0] == pytest.approx(100.0) and gfe[0] == pytest.approx(2.0)
    # it is 10^(M/5 + 2): a star at 100 pc (1/0.01 kpc... parallax 10 mas) with G = 5 has M = 0 -> 100
    assert ph.pseudo_luminosity(np.array([10.0]), np.array([0.1]), np.array([5.0]))[0][0] == pytest.approx(100.0)


def test_negative_parallax_gives_negative_pseudo_luminosity_with_positive_error():
    gf, gfe = ph.pseudo_luminosity(np.array([-0.05]), np.array([0.03]), np.array([15.0]))
    assert gf[0] < 0 and gfe[0] > 0


def test_bp_rp_error_has_zero_point_floors():
    # infinite S/N leaves the floors: sqrt(0.00279017^2 + 0.00377938^2) = 0.0046978 mag
    assert ph.bp_rp_error_mag(np.array([np.inf]), np.array([np.inf]))[0] == pytest.approx(0.0046978, abs=1e-6)
    # S/N 100 in both: sqrt(2 (0.010857)^2 + floors^2)
    want = np.sqrt(2 * (1.0857362 / 100) ** 2 + 0.0027901700**2 + 0.0037793818**2)
    assert ph.bp_rp_error_mag(np.array([100.0]), np.array([100.0]))[0] == pytest.approx(want, rel=1e-6)


def test_colour_errors_add_in_quadrature():
    c, e = ph.colour_and_error(np.array([10.0]), np.array([0.03]), np.array([9.5]), np.array([0.04]))
    assert c[0] == pytest.approx(0.5) and e[0] == pytest.approx(0.05)


def test_relevancy_mask_copies_third_last_to_last_two():
    m = ph.relevancy_mask(np.array([53, 52, 10, 0]))
    assert m[0].all()  # 53 relevant: index 52 relevant, so 53 and 54 follow it
    assert m[1, :52].all() and not m[1, 52:].any()
    assert m[2, :10].all() and not m[2, 10:].any()
    assert not m[3].any()


def test_xp_normalisation_by_g_flux():
    c, e = ph.normalise_xp(np.full((1, 55), 1000.0), np.full((1, 55), 10.0), np.array([25.6873668671 - 2.5 * 3]))
    np.testing.assert_allclose(c, 1.0)  # F_G = 1000 e-/s
    np.testing.assert_allclose(e, 0.01)


def test_label_cuts_follow_the_paper():
    starflag = np.array([0, 4, 0, 0, 0])
    aspcap = np.array([0, 0, 1 << 19, 1 << 23, (1 << 0) | (1 << 7)])  # warnings only in the last
    np.testing.assert_array_equal(label_quality(starflag, aspcap), [True, False, False, False, True])


def test_xp_and_parallax_cuts_with_nan():
    cfg = CatalogConfig()
    g = np.array([5.9, 6.1, 17.4, 17.6, 12.0, 12.0, np.nan])
    c = np.array([1.0, 1.0, 1.0, 1.0, 4.1, 1.0, 1.0])
    x = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 2.1, 1.2])
    np.testing.assert_array_equal(xp_quality(g, c, x, cfg), [False, True, True, False, False, False, False])
    np.testing.assert_array_equal(parallax_quality([1.0, 1.5, 1.0, np.nan], [0.05, 0.05, 0.1, 0.05], cfg), [True, False, False, False])


def test_extra_offset_and_solution_flags():
    np.testing.assert_allclose(extra_zero_point_mas([12.0, 14.0, 18.0]), [0.0, 0.005, 0.020])
    off, flag = parallax_offset_mas(
        np.array([15.0, 15.0, 15.0]),
        np.array([1.55, np.nan, np.nan]),
        np.array([np.nan, 1.5, np.nan]),
        np.array([20.0, 20.0, 20.0]),
        np.array([31, 95, 3]),
    )
    assert flag[0] == FLAG_OK and flag[1] == FLAG_OK and flag[2] == FLAG_NO_SOLUTION
    assert off[2] == 0.0 and -0.05 < off[0] - 0.010 < 0.0  # Z_gdr3 is negative, extra is +10 uas at G = 15


def test_distance_from_parallax_samples():
    np.testing.assert_allclose(parallax_samples_to_distance_kpc(np.array([2.0, 0.5, 0.0, -0.3])), [0.5, 2.0, 99.0, 99.0])


def test_log_ebv_rules_of_section_4_3():
    # all samples exactly 0.1 -> ln 0.1, no spread; zero or negative -> e^-7; > 10 -> NaN (ignored)
    e = np.array([[0.1, 0.1, 0.1, 0.1], [0.0, -0.01, 0.0, 0.0], [12.0, 0.2, 0.2, 0.2], [11.0, 12.0, 13.0, 14.0]])
    med, mad = log_ebv_from_samples(e)
    np.testing.assert_allclose(med[:3], [np.log(0.1), -7.0, np.log(0.2)])
    np.testing.assert_allclose(mad[:3], [0.0, 0.0, 0.0])
    assert np.isnan(med[3]) and np.isnan(mad[3])


def test_percentile_clip_marks_outliers_only():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(10000, 2))
    v[0, 0] = 50.0
    out, n = percentile_clip(v, np.ones(10000, bool), (0.2, 99.8))
    assert np.isnan(out[0, 0]) and 70 <= n <= 90  # about 0.4% of 20,000 values
