"""The physical steps of the evaluation, each a function of arrays with its units named.

Sequences of Zhang et al. (2023) used by Leung & Bovy (eqs. 12-13), the pseudo-luminosity
g_fakemag turned into an absolute magnitude, a distance and a flux at 10 pc, XP coefficients
into a spectrum, and the extinction curve of eq. 15.
"""

from __future__ import annotations

import numpy as np

from ..gaia.photometry import g_flux_e_per_s
from ..gaia.xp import N_COEFF, calibrated_flux, xp_basis

EBV_TRUE_PER_C19 = 0.884  # Schlafly & Finkbeiner (2011): E(B-V)_true = 0.884 E(B-V)_C19 (eq. 10)
LOG_EBV_ZERO = -7.0  # the catalog's ln E(B-V) for no extinction (E(B-V) = 0 is set to e^-7)
M_G_SUN = 4.67  # absolute G magnitude of the Sun (Casagrande & VandenBerg 2018)
TEFF_SUN_K = 5772.0  # IAU 2015 nominal solar effective temperature
LOGG_SUN_DEX = 4.438  # log10 of the nominal solar surface gravity in cgs


def logg_dwarf(teff_k):
    """Eq. 12: log g (dex) of solar-metallicity dwarfs: 4.6 below 5000 K, falling by 0.0005 dex/K to 3.95 at 6300 K."""
    t = np.asarray(teff_k, float)
    return np.where(t < 5000.0, 4.6, np.where(t < 6300.0, 4.6 - 0.0005 * (t - 5000.0), 3.95))


def log_luminosity_from_radius(radius_rsun, teff_k):
    """Stefan-Boltzmann: log10 L/Lsun = 2 log10 R/Rsun + 4 log10 Teff/Teff_sun."""
    return 2.0 * np.log10(np.asarray(radius_rsun, float)) + 4.0 * np.log10(np.asarray(teff_k, float) / TEFF_SUN_K)


def log_luminosity_from_mass(mass_msun, teff_k, logg_dex):
    """L = 4 pi G M sigma Teff^4 / g: log10 L/Lsun = log10 M/Msun + 4 log10 Teff/Teff_sun - (log g - log g_sun)."""
    return (
        np.log10(np.asarray(mass_msun, float))
        + 4.0 * np.log10(np.asarray(teff_k, float) / TEFF_SUN_K)
        - (np.asarray(logg_dex, float) - LOGG_SUN_DEX)
    )


def teff_rgb(logg_dex):
    """Eq. 13: Teff (K) of solar-metallicity red giants as a function of log g (dex)."""
    g = np.asarray(logg_dex, float)
    return np.where(g < 3.65, 5200.0 - 441.86 * (3.65 - g), 5900.0 - 1400.0 * (4.15 - g))


def log_ebv_c19(ebv_c19_mag):
    """The logebv token (ln E(B-V) on the C19/SFD scale) of a reddening; 0 becomes the catalog's e^-7 floor."""
    e = np.asarray(ebv_c19_mag, float)
    with np.errstate(divide="ignore"):
        return np.where(e > np.exp(LOG_EBV_ZERO), np.log(np.maximum(e, 1e-300)), LOG_EBV_ZERO)


def fakemag(parallax_mas, g_mag):
    """g_fakemag = parallax (mas) 10^(G/5) (eq. 9)."""
    return np.asarray(parallax_mas, float) * 10.0 ** (0.2 * np.asarray(g_mag, float))


def parallax_mas_from_fakemag(g_fakemag, g_mag):
    """The parallax (mas) implied by a pseudo-luminosity and an apparent G: g_fakemag / 10^(G/5)."""
    return np.asarray(g_fakemag, float) / 10.0 ** (0.2 * np.asarray(g_mag, float))


def distance_kpc_from_fakemag(g_fakemag, g_mag):
    """Distance (kpc) = 1 / parallax (mas); NaN where the pseudo-luminosity is not positive."""
    plx = parallax_mas_from_fakemag(g_fakemag, g_mag)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(plx > 0, 1.0 / plx, np.nan)


def absolute_g_mag(g_fakemag):
    """M_G of a star from its pseudo-luminosity: at 10 pc the parallax is 100 mas, so M_G = 5 log10(g_fakemag / 100)."""
    f = np.asarray(g_fakemag, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, 5.0 * np.log10(f / 100.0), np.nan)


def log_luminosity_g(g_fakemag):
    """log10 of the G-band luminosity in solar units, -0.4 (M_G - M_G,sun)."""
    return -0.4 * (absolute_g_mag(g_fakemag) - M_G_SUN)


def xp_spectrum(bp_norm, rp_norm, g_mag=None):
    """Spectrum (W m^-2 nm^-1 on gaiaxpy's 336-1020 nm grid) of G-normalised XP coefficients (stars x 55 each).

    With ``g_mag`` (e.g. the absolute M_G for a flux at 10 pc) the coefficients are scaled back
    by the G-band flux of that magnitude; without it the spectrum is G-normalised (flux / F_G).
    Returns (wavelength_nm, flux).
    """
    bp, rp = np.atleast_2d(bp_norm), np.atleast_2d(rp_norm)
    if bp.shape[1] != N_COEFF or rp.shape[1] != N_COEFF:
        raise ValueError(f"need {N_COEFF} BP and {N_COEFF} RP coefficients per star, got {bp.shape[1]} and {rp.shape[1]}")
    scale = np.ones(bp.shape[0]) if g_mag is None else g_flux_e_per_s(np.broadcast_to(g_mag, bp.shape[:1]))
    grid = xp_basis()[0]
    return grid, calibrated_flux({"bp": bp * scale[:, None], "rp": rp * scale[:, None]})


def extinction_curve(flux_unreddened, flux_reddened, ebv_c19_mag, reference_ebv_c19_mag=0.0):
    """Eq. 15: R(lambda) = A(lambda) / E(B-V)_true with E(B-V)_true = 0.884 E(B-V)_C19; NaN where a flux is not positive.

    A(lambda) is an extinction in magnitudes (eq. 14), A = 2.5 log10(F_0 / F_E); the paper writes
    eq. 15 with ln(F_0 / F_E), which would return 0.921 R. We keep the magnitude definition so that
    an injected curve is recovered exactly (tests/test_evaluate.py).
    ``reference_ebv_c19_mag``: the reddening of the reference spectrum F_0 (the paper: 0). With a
    reference at E_ref > 0, A(lambda) is the extinction between the two, so the denominator is
    0.884 (E - E_ref); for a linear extinction law this returns the same R.
    """
    f0, fe = np.asarray(flux_unreddened, float), np.asarray(flux_reddened, float)
    ebv = np.asarray(ebv_c19_mag, float) - float(reference_ebv_c19_mag)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((f0 > 0) & (fe > 0), f0 / fe, np.nan)
        return 2.5 * np.log10(ratio) / (EBV_TRUE_PER_C19 * (ebv[..., None] if ebv.ndim else ebv))


def fitzpatrick_r(wavelength_nm, r_v: float = 3.1):
    """R(lambda) = A(lambda) / E(B-V) of the Fitzpatrick (1999) curve (``extinction`` package) for R_V."""
    import extinction

    return r_v * extinction.fitzpatrick99(np.asarray(wavelength_nm, float) * 10.0, 1.0, r_v)
