"""APOGEE-like spectra (issue 8, first part): the ASPCAP grid, line depths by hand, the synthetic gap
between the two versions, noise and bad pixels, and the aspcapStar reader."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from pipeline.sky.apogee import (
    CO_BANDHEADS_AA,
    CO_CHI,
    LINES,
    MOLECULES,
    SyntheticGap,
    co_band_lines,
    line_depth,
    line_list,
    mock_spectra,
    normalised_spectra,
    synthetic_spectra,
    telluric_residuals,
)
from pipeline.spectrafm.aspcap import aspcap_pixels, aspcap_wavelength_aa, read_aspcapstar


def test_aspcap_grid_has_7514_pixels_between_15100_and_17000_angstrom():
    lam = aspcap_wavelength_aa()
    assert lam.size == 7514 and 15100 < lam[0] < lam[-1] < 17000
    # first kept pixel: 10^(4.179 + 246 x 6e-6) = 15152.21 A (by hand)
    assert lam[0] == pytest.approx(10 ** (4.179 + 246 * 6e-6)) and lam[0] == pytest.approx(15152.21, abs=0.01)
    gaps = np.nonzero(np.diff(aspcap_pixels()) > 1)[0]
    assert len(gaps) == 2  # the two detector gaps
    lines = line_list()
    assert set(lines.element) == {"Fe", "Mg", "O", "Si", "H", "C"}
    assert set(lines.species) == {"Fe", "Mg", "O", "Si", "H", "OH", "CN", "CO"}
    assert lines.wavelength_aa.between(lam[0], lam[-1]).all()


def test_line_depth_by_hand():
    # s = s0 10^(ab + chi_t (5000 - Teff)/1000 + chi_g (logg - 2.5)) = 1 x 10^0 = 1 at the reference: depth = 0.85 / 2
    assert line_depth(1.0, 0.25, 0.05, "Fe", 5000.0, 2.5, 0.0) == pytest.approx(0.425)
    # [Fe/H] = -1: s = 0.1, depth = 0.85 x 0.1 / 1.1
    assert line_depth(1.0, 0.25, 0.05, "Fe", 5000.0, 2.5, -1.0) == pytest.approx(0.85 * 0.1 / 1.1)
    assert line_depth(1.0, -0.4, 0.0, "H", 6000.0, 4.5, -2.0) > line_depth(1.0, -0.4, 0.0, "H", 4500.0, 1.5, 0.0)


def test_molecular_lines_deepen_steeply_as_giants_cool_by_hand():
    element, _, _, chi_teff, chi_logg = MOLECULES["OH"]
    assert element == "O" and chi_teff == 1.3
    # an OH line of s0 = 0.1: s = 0.1 x 10^1.3 = 1.995 at 4000 K (depth 0.85 x 1.995 / 2.995 = 0.566),
    # s = 0.1 at 5000 K (depth 0.0773): seven times deeper 1000 K cooler
    assert line_depth(0.1, chi_teff, chi_logg, "O", 4000.0, 2.5, 0.0) == pytest.approx(0.5662, abs=1e-4)
    assert line_depth(0.1, chi_teff, chi_logg, "O", 5000.0, 2.5, 0.0) == pytest.approx(0.07727, abs=1e-5)
    # CO grows as gravity falls: s0 = 0.1 at logg 1.5 is s = 0.1 x 10^0.35 = 0.2239 -> depth 0.85 x 0.2239 / 1.2239
    assert line_depth(0.1, *CO_CHI, "C", 5000.0, 1.5, 0.0) == pytest.approx(0.85 * 0.2239 / 1.2239, abs=1e-4)
    # the bandheads: line k lies 0.02 k^2 A redward of its head and weakens as exp(-k / 20)
    co = [line for line in co_band_lines(40)]
    assert co[0][1] == pytest.approx(CO_BANDHEADS_AA[0]) and co[10][1] == pytest.approx(CO_BANDHEADS_AA[0] + 2.0)
    assert co[20][2] == pytest.approx(0.3 * np.exp(-1.0), abs=1e-4)


def test_every_256_pixel_chunk_carries_teff_and_logg():
    """SpectraFM reads 256-pixel chunks: the Cramer-Rao bound of Teff and logg from one chunk of a
    solar-metallicity giant at SNR 100 is tens of K and < 0.1 dex (the lines alone, before this mock's
    molecules, gave ~440 K)."""
    star = np.array([4700.0, 2.5, 0.0, 0.0, 0.0])
    steps = np.array([10.0, 0.02, 0.01, 0.01, 0.01])
    jac = []
    for i, h in enumerate(steps):
        lo, hi = star.copy(), star.copy()
        lo[i] -= h
        hi[i] += h
        jac.append((normalised_spectra(*hi[:, None]) - normalised_spectra(*lo[:, None]))[0] / (2 * h))
    jac = np.array(jac)
    bounds = []
    for c in range(0, 7514 - 256, 256):
        fisher = jac[:, c : c + 256] @ jac[:, c : c + 256].T / 0.01**2
        bounds.append(np.sqrt(np.diag(np.linalg.pinv(fisher)))[:2])
    teff, logg = np.median(bounds, axis=0)
    assert teff < 40.0 and logg < 0.1


def _line_core(flux, wavelength):
    return flux[:, np.argmin(np.abs(aspcap_wavelength_aa() - wavelength))]


def test_brackett_lines_broaden_with_gravity():
    from pipeline.sky.apogee import brackett_sigma_aa

    assert brackett_sigma_aa(2.5) == pytest.approx(1.0)
    assert brackett_sigma_aa(4.5) == pytest.approx(10**0.7)  # ~5 A in dwarfs
    labels = dict(teff_k=[6500.0] * 2, logg_dex=[1.5, 4.5], fe_h=[-2.0] * 2, o_fe=[0.0] * 2, mg_fe=[0.0] * 2)
    f = normalised_spectra(**labels)
    wing = _line_core(f, 16811.11 + 6.0)  # 6 A from Br 11's centre: continuum in the giant, in the wing of the dwarf
    assert wing[1] < wing[0] - 0.01


def test_metal_lines_deepen_with_metallicity_and_the_continuum_is_one():
    labels = dict(teff_k=[4600.0] * 3, logg_dex=[2.4] * 3, fe_h=[-1.5, -0.5, 0.3], o_fe=[0.0] * 3, mg_fe=[0.0] * 3)
    f = normalised_spectra(**labels)
    core = _line_core(f, 16386.30)
    assert core[0] > core[1] > core[2]
    # a hot iron-poor star has almost no metal or molecular lines: away from the Brackett lines it is the continuum
    hot = normalised_spectra([7000.0], [4.0], [-2.5], [0.0], [0.0])[0]
    lam = aspcap_wavelength_aa()
    h = np.array([w for el, w, *_ in LINES if el == "H"])
    far = np.min(np.abs(lam[:, None] - h), axis=1) > 40.0
    assert far.sum() > 1000 and np.median(hot[far]) > 0.999 and hot[far].min() > 0.97


def test_observed_spectra_carry_noise_and_bad_pixels():
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"teff": [4700.0] * 200, "logg": 2.5, "fe_h": 0.0, "o_fe": 0.0, "mg_fe": 0.0})
    plain = SyntheticGap(
        depth_scale=1.0, log_gf_scatter_dex=0.0, missing_every=0, ripple_amplitude=0.0, resolution_scatter=0.0, telluric_depth=0.0
    )
    synthetic, observed, err = mock_spectra(labels, np.full(200, 100.0), rng, plain, bad_pixel_fraction=0.03)
    assert synthetic.shape == observed.shape == (200, 7514) and np.isfinite(synthetic).all()
    assert np.isnan(observed).mean() == pytest.approx(0.03, abs=0.003)
    np.testing.assert_allclose(err, 0.01)
    assert np.nanstd(observed - synthetic) == pytest.approx(0.01, rel=0.02)  # without a gap: 1 / SNR alone


def test_each_ingredient_of_the_synthetic_gap():
    labels = pd.DataFrame({"teff": [4700.0], "logg": 2.5, "fe_h": 0.0, "o_fe": 0.0, "mg_fe": 0.0})
    none = dict(depth_scale=1.0, log_gf_scatter_dex=0.0, missing_every=0, ripple_amplitude=0.0, resolution_scatter=0.0, telluric_depth=0.0)
    exact = synthetic_spectra(labels, SyntheticGap(**none))[0]
    # lines missing from the synthetic model: line 0 (a strong Fe I feature) is absent with missing_every
    missing = synthetic_spectra(labels, SyntheticGap(**{**none, "missing_every": 7}))[0]
    assert _line_core(missing[None], LINES[0][1])[0] > _line_core(exact[None], LINES[0][1])[0] + 0.1
    # log gf errors: each line's strength off by a seeded offset of 0.15 dex x (1 + its strength in Arcturus)
    from pipeline.sky.apogee import _line_offsets_dex, calibration_strength

    offsets = _line_offsets_dex(SyntheticGap(**{**none, "log_gf_scatter_dex": 0.15}))
    weights = 1.0 + calibration_strength(np.arange(len(LINES)))
    assert offsets.size == len(LINES) and np.std(offsets / weights) == pytest.approx(0.15, rel=0.05)
    wrong = synthetic_spectra(labels, SyntheticGap(**{**none, "log_gf_scatter_dex": 0.15}))[0]
    assert 0.005 < np.std(wrong - exact) < 0.05
    # telluric residuals: lines of up to +-2% (blends of two: 4%) at fixed Earth-frame wavelengths, only in
    # the bands of CO2 (1.570-1.582 and 1.5975-1.620 um), CH4 (1.63 um on) and H2O; none near 1.53 or 1.62-1.63 um
    t = telluric_residuals(aspcap_wavelength_aa(), 50, np.random.default_rng(1), SyntheticGap())
    lam = aspcap_wavelength_aa()
    inside = ((lam > 15_690) & (lam < 15_830)) | ((lam > 15_965) & (lam < 16_210)) | (lam > 16_290)
    assert np.all(t[:, ~inside] == 1.0) and 0.006 < np.abs(t[:, inside] - 1).max() <= 0.041
    weak_co2 = (lam > 15_965) & (lam < 16_210)  # the 30012 band: half as deep, so at most 1% (blends of two: 2%)
    assert 0.003 < np.abs(t[:, weak_co2] - 1).max() <= 0.0201
    # the line-spread: at a 10% lower resolution the lines are broader, the spectrum smoother
    lo_res = normalised_spectra([4700.0], [2.5], [0.0], [0.0], [0.0], resolution=22_500 * 0.9)[0]
    assert np.sum(np.diff(lo_res) ** 2) < 0.95 * np.sum(np.diff(exact) ** 2)


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


def test_telluric_line_list_spreads_lines_over_the_bands_by_share():
    from pipeline.sky.apogee import TELLURIC_BANDS, telluric_line_list

    w0, depth = telluric_line_list(100)
    assert w0.size == depth.size == 100
    # shares 0.3, 0.3, 0.2, 0.2 of 100 lines: 30 CO2 lines near 1.575 um, 30 in the weak band, 20 CH4, 20 H2O
    for (_, lo, hi, band_depth, _), (start, stop) in zip(TELLURIC_BANDS, [(0, 30), (30, 60), (60, 80), (80, 100)]):
        assert np.all((w0[start:stop] >= lo) & (w0[start:stop] <= hi))
        assert np.all((depth[start:stop] >= 0.3 * band_depth) & (depth[start:stop] <= band_depth))
    np.testing.assert_array_equal(telluric_line_list(100)[0], w0)  # seeded: the same lines for every star and run


def test_a_line_saturated_in_the_calibration_star_keeps_a_larger_log_gf_error():
    from pipeline.sky.apogee import CALIBRATION_STAR, _line_offsets_dex, calibration_strength

    # line 0, Fe at 15194.5 A (s0 1.2, chi 0.25, 0.05) in Arcturus (4286 K, logg 1.66, [Fe/H] -0.52), by hand:
    # s = 1.2 x 10^(-0.52 + 0.25 x 0.714 + 0.05 x (-0.84)) = 1.2 x 10^-0.3835 = 0.496
    assert CALIBRATION_STAR["fe_h"] == -0.52
    assert calibration_strength([0])[0] == pytest.approx(0.496, abs=0.002)
    # its error is the weak-line precision x 1.496; a weak forest line (s << 1) keeps about the precision itself
    unit = _line_offsets_dex(SyntheticGap(log_gf_scatter_dex=1.0))
    z = np.random.default_rng(404).standard_normal(len(LINES))
    assert unit[0] == pytest.approx(z[0] * 1.496, rel=0.002)
    weak = int(np.argmin(calibration_strength(np.arange(len(LINES)))))
    assert unit[weak] == pytest.approx(z[weak], rel=0.02)
