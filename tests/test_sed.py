import numpy as np
import pytest

from pipeline.gaia.xp import synthetic_gaia_mags
from pipeline.sky import sed, xp
from pipeline.sky.build import model_spectrum


def test_radius_of_the_sun_from_its_mass_and_gravity():
    assert sed.radius_rsun(np.array([1.0]), np.array([sed.LOGG_SUN]))[0] == pytest.approx(1.0, abs=0.005)


def test_planck_peak_follows_wien_law():
    lam = np.linspace(300, 1100, 4001)
    f = sed.planck_flux_nm(lam, np.array([5000.0]))[0]
    assert lam[np.argmax(f)] == pytest.approx(2.897771955e6 / 5000.0, abs=0.5)  # nm


def test_sun_at_10pc_has_solar_absolute_gaia_magnitudes():
    # The Sun: M_G = 4.67, BP-RP = 0.82 (Casagrande & VandenBerg 2018). The SED is parametric,
    # so allow 0.2 mag in G and 0.15 in colour.
    spec = model_spectrum(np.array([5772.0]), np.array([4.438]), np.array([0.0]), np.array([1.0]), np.array([10.0]), np.array([0.0]))
    g, bp, rp = synthetic_gaia_mags(xp.project_spectrum(spec))[0]
    assert g == pytest.approx(4.67, abs=0.2)
    assert bp - rp == pytest.approx(0.82, abs=0.15)


def test_reddening_makes_stars_fainter_and_redder():
    args = (np.array([4750.0, 4750.0]), np.array([2.5, 2.5]), np.array([0.0, 0.0]), np.array([10.0, 10.0]), np.array([1000.0, 1000.0]))
    mags = synthetic_gaia_mags(xp.project_spectrum(model_spectrum(*args, np.array([0.0, 0.5]))))
    (g0, bp0, rp0), (g1, bp1, rp1) = mags
    # A_G / E(B-V) ~ 2.7 and E(BP-RP) / E(B-V) ~ 1.3 for a K giant (Casagrande & VandenBerg 2018)
    assert g1 - g0 == pytest.approx(2.7 * 0.5, rel=0.2)
    assert (bp1 - rp1) - (bp0 - rp0) == pytest.approx(1.3 * 0.5, rel=0.2)


def test_giant_and_dwarf_twomass_colours_are_plausible():
    tm = sed.twomass_abs_mags(np.array([4750.0]), np.array([11.0]))
    assert tm["J"][0] - tm["K"][0] == pytest.approx(0.6, abs=0.15)  # red clump J-Ks ~ 0.6
