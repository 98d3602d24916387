"""APOGEE-like spectra (issue 8, first part): the ASPCAP grid, line depths by hand, the synthetic gap
between the two versions, noise and bad pixels, and the aspcapStar reader."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from pipeline.sky.apogee import LINES, SyntheticGap, line_depth, line_list, mock_spectra, normalised_spectra
from pipeline.spectrafm.aspcap import aspcap_pixels, aspcap_wavelength_aa, read_aspcapstar


def test_aspcap_grid_has_7514_pixels_between_15100_and_17000_angstrom():
    lam = aspcap_wavelength_aa()
    assert lam.size == 7514 and 15100 < lam[0] < lam[-1] < 17000
    # first kept pixel: 10^(4.179 + 246 x 6e-6) = 15152.21 A (by hand)
    assert lam[0] == pytest.approx(10 ** (4.179 + 246 * 6e-6)) and lam[0] == pytest.approx(15152.21, abs=0.01)
    gaps = np.nonzero(np.diff(aspcap_pixels()) > 1)[0]
    assert len(gaps) == 2  # the two detector gaps
    assert set(line_list().element) == {"Fe", "Mg", "O", "Si", "H"}
    assert line_list().wavelength_aa.between(lam[0], lam[-1]).all()


def test_line_depth_by_hand():
    # s = s0 10^(ab + chi_t (5000 - Teff)/1000 + chi_g (logg - 2.5)) = 1 x 10^0 = 1 at the reference: depth = 0.85 / 2
    assert line_depth(1.0, 0.25, 0.05, "Fe", 5000.0, 2.5, 0.0) == pytest.approx(0.425)
    # [Fe/H] = -1: s = 0.1, depth = 0.85 x 0.1 / 1.1
    assert line_depth(1.0, 0.25, 0.05, "Fe", 5000.0, 2.5, -1.0) == pytest.approx(0.85 * 0.1 / 1.1)
    assert line_depth(1.0, -0.4, 0.0, "H", 6000.0, 4.5, -2.0) > line_depth(1.0, -0.4, 0.0, "H", 4500.0, 1.5, 0.0)


def _far_from_lines(lam):
    """Pixels more than 3 A from any metal line and 25 A from the (pressure-broadened) Brackett lines."""
    metal = np.array([w for el, w, *_ in LINES if el != "H"])
    h = np.array([w for el, w, *_ in LINES if el == "H"])
    return (np.min(np.abs(lam[:, None] - metal), axis=1) > 3.0) & (np.min(np.abs(lam[:, None] - h), axis=1) > 25.0)


def test_brackett_lines_broaden_with_gravity():
    from pipeline.sky.apogee import brackett_sigma_aa

    assert brackett_sigma_aa(2.5) == pytest.approx(1.0)
    assert brackett_sigma_aa(4.5) == pytest.approx(10**0.7)  # ~5 A in dwarfs
    labels = dict(teff_k=[5200.0] * 2, logg_dex=[1.5, 4.5], fe_h=[0.0] * 2, o_fe=[0.0] * 2, mg_fe=[0.0] * 2)
    f = normalised_spectra(**labels)
    wing = _line_core(f, 16811.11 + 6.0)  # 6 A from Br 11's centre: continuum in the giant, in the wing of the dwarf
    assert wing[1] < wing[0] - 0.01


def _line_core(flux, wavelength):
    return flux[:, np.argmin(np.abs(aspcap_wavelength_aa() - wavelength))]


def test_metal_lines_deepen_with_metallicity_and_the_continuum_is_one():
    labels = dict(teff_k=[4600.0] * 3, logg_dex=[2.4] * 3, fe_h=[-1.5, -0.5, 0.3], o_fe=[0.0] * 3, mg_fe=[0.0] * 3)
    f = normalised_spectra(**labels)
    core = _line_core(f, 16386.30)
    assert core[0] > core[1] > core[2]
    lam = aspcap_wavelength_aa()
    far = _far_from_lines(lam)
    np.testing.assert_allclose(f[:, far], 1.0, atol=2e-3)


def test_observed_spectra_carry_the_synthetic_gap_noise_and_bad_pixels():
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"teff": [4700.0] * 200, "logg": 2.5, "fe_h": 0.0, "o_fe": 0.0, "mg_fe": 0.0})
    gap = SyntheticGap(depth_scale=1.2, missing_every=5, ripple_amplitude=0.0)
    synthetic, observed, err = mock_spectra(labels, np.full(200, 100.0), rng, gap, bad_pixel_fraction=0.03)
    assert synthetic.shape == observed.shape == (200, 7514) and np.isfinite(synthetic).all()
    assert np.isnan(observed).mean() == pytest.approx(0.03, abs=0.003)
    np.testing.assert_allclose(err, 0.01)
    missing = LINES[0][1]  # line 0 is absent from the synthetic model
    assert _line_core(synthetic, missing).min() > 0.98 and np.nanmedian(_line_core(observed, missing)) < 0.9
    kept = LINES[1][1]  # a line in both: the observed one is deeper
    assert np.nanmedian(_line_core(observed, kept)) < _line_core(synthetic, kept)[0]
    lam = aspcap_wavelength_aa()
    far = _far_from_lines(lam)
    resid = observed[:, far] - synthetic[:, far]
    assert np.nanstd(resid) == pytest.approx(0.01, rel=0.05)  # 1 / SNR


def _aspcapstar(path, n, with_header=True):
    lam_grid = 10 ** (4.179 + 6e-6 * np.arange(8575))
    flux = np.ones(n, np.float32)
    flux[:10] = 0.0  # gaps / unusable pixels are zeros in the file
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(flux),
        fits.ImageHDU(np.full(n, 0.01, np.float32)),
        fits.ImageHDU(np.full(n, 0.99, np.float32)),
    ]
    if with_header:
        hdus[1].header["CRVAL1"], hdus[1].header["CDELT1"] = 4.179, 6e-6
    fits.HDUList(hdus).writeto(path)
    return lam_grid


@pytest.mark.parametrize("n", [8575, 7514])
def test_aspcapstar_reader_takes_both_layouts(tmp_path, n):
    _aspcapstar(tmp_path / "aspcapStar-dr17-2M00000000+0000000.fits", n)
    lam, flux, err, fit = read_aspcapstar(tmp_path / "aspcapStar-dr17-2M00000000+0000000.fits")
    assert lam.size == flux.size == err.size == fit.size == 7514
    np.testing.assert_allclose(lam, aspcap_wavelength_aa())
    assert np.isnan(flux[:10]).all() == (n == 7514) and np.nanmax(np.abs(fit - 0.99)) < 1e-6


def test_aspcapstar_reader_says_what_is_wrong(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(100))]).writeto(tmp_path / "bad.fits")
    with pytest.raises(ValueError, match="HDU 1 .spectrum., 2 .error., 3 .best fit."):
        read_aspcapstar(tmp_path / "bad.fits")
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(np.ones(100))] * 3).writeto(tmp_path / "short.fits")
    with pytest.raises(ValueError, match="100 pixels"):
        read_aspcapstar(tmp_path / "short.fits")


def test_wavelength_encoding_of_eqs_2_and_3_by_hand():
    from pipeline.spectrafm.encoding import normalised_wavelength, wavelength_encoding

    assert normalised_wavelength(16_000.0) == pytest.approx(0.5)
    pe = wavelength_encoding(np.array([15_000.0, 16_000.0]), d_model=4)
    # lambda_hat = 0: sin 0, cos 0, sin 0, cos 0
    np.testing.assert_allclose(pe[0], [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    # lambda_hat = 0.5: angles 500 / 10000^(2 floor(k/2) / 4) = 500, 500, 5, 5 (the published code pairs
    # each cos with the sin before it; the paper's eq. 2 prints k / d_model for both)
    np.testing.assert_allclose(pe[1], [np.sin(500.0), np.cos(500.0), np.sin(5.0), np.cos(5.0)], rtol=1e-12)
    # neighbouring APOGEE pixels (0.2-0.3 A apart) get distinct encodings
    lam = aspcap_wavelength_aa()[:2]
    assert np.abs(np.diff(wavelength_encoding(lam, 256), axis=0)).max() > 0.05
