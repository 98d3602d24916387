"""A parametric stellar SED of (Teff, logg, [M/H]) and the photometry derived from it.

The SED is a Planck continuum with line blanketing in the blue, a gravity-dependent Balmer
jump for hot stars, Gaussian absorption lines (Balmer series, Ca II H&K, G band, Mg b, Na D,
the Ca II triplet) whose depths depend on Teff, logg and [M/H], and TiO bands for cool stars.
It is not a stellar atmosphere: it is a smooth, known function whose XP projection and colours
behave like real stars' (see the realism report).

Everything is evaluated directly at Gaia XP resolution: a Gaussian line of intrinsic width
``w`` convolved with the XP line-spread function of width ``s`` is a Gaussian of width
``sqrt(w^2 + s^2)`` with the same equivalent width, so the "model spectrum" that the mock's
XP coefficients encode is known exactly, without a fine grid.

Units: wavelengths in nm, flux densities in W m^-2 nm^-1 (the units of ``gaiaxpy.calibrate``),
temperatures in K, radii in solar radii, distances in pc or kpc as named.
"""

from __future__ import annotations

import numpy as np

H_PLANCK = 6.62607015e-34  # J s
C_LIGHT = 2.99792458e8  # m s^-1
K_BOLTZMANN = 1.380649e-23  # J K^-1
R_SUN_M = 6.957e8  # m (IAU nominal)
PC_M = 3.0856775814913673e16  # m
G_NEWTON = 6.67430e-11  # m^3 kg^-1 s^-2
M_SUN_KG = 1.98840987e30  # kg
LOGG_SUN = 4.438  # log10(g / cm s^-2)

# (centre nm, intrinsic Gaussian sigma nm, name) of the absorption features.
BALMER_LINES_NM = (656.28, 486.13, 434.05, 410.17, 397.01, 388.91)
METAL_LINES = (
    # centre, sigma, name
    (393.37, 0.6, "Ca II K"),
    (396.85, 0.6, "Ca II H"),
    (430.8, 0.8, "G band (CH)"),
    (517.3, 0.6, "Mg b"),
    (589.3, 0.4, "Na D"),
    (849.8, 0.5, "Ca II 8498"),
    (854.2, 0.6, "Ca II 8542"),
    (866.2, 0.6, "Ca II 8662"),
)
TIO_BAND_HEADS_NM = (476.1, 516.7, 544.8, 615.9, 665.1, 705.3, 758.9, 843.2)

# 2MASS passbands approximated as Gaussians (centre, sigma nm) with the Cohen et al. (2003)
# zero-magnitude flux densities in W m^-2 nm^-1.
TWOMASS_BANDS = {
    "J": (1235.0, 68.0, 3.129e-12),
    "H": (1662.0, 106.0, 1.133e-12),
    "K": (2159.0, 111.0, 4.283e-13),
}


def planck_flux_nm(wavelength_nm: np.ndarray, teff_k: np.ndarray) -> np.ndarray:
    """Surface flux pi*B_lambda(T) in W m^-2 nm^-1, broadcast over (stars, wavelengths)."""
    lam = np.asarray(wavelength_nm, dtype=float)[None, :] * 1e-9
    t = np.asarray(teff_k, dtype=float)[:, None]
    x = H_PLANCK * C_LIGHT / (lam * K_BOLTZMANN * t)
    b = 2.0 * H_PLANCK * C_LIGHT**2 / lam**5 / np.expm1(np.minimum(x, 700.0))
    return np.pi * b * 1e-9


def radius_rsun(mass_msun: np.ndarray, logg_cgs: np.ndarray) -> np.ndarray:
    """Stellar radius from mass and surface gravity: R = sqrt(G M / g)."""
    g_si = 10.0 ** (np.asarray(logg_cgs, dtype=float) - 2.0)
    return np.sqrt(G_NEWTON * np.asarray(mass_msun) * M_SUN_KG / g_si) / R_SUN_M


def dilution(radius_rsun_: np.ndarray, distance_pc: np.ndarray) -> np.ndarray:
    """Geometric dilution (R/d)^2 turning surface flux into flux at the observer."""
    return (np.asarray(radius_rsun_) * R_SUN_M / (np.asarray(distance_pc) * PC_M)) ** 2


def xp_lsf_sigma_nm(wavelength_nm: np.ndarray) -> np.ndarray:
    """Gaussian sigma of the Gaia XP line-spread function (resolving power ~30-100).

    BP's resolution degrades from ~3 nm FWHM at 330 nm to ~17 nm at 640 nm; RP's is ~15-30 nm.
    """
    lam = np.asarray(wavelength_nm, dtype=float)
    fwhm = np.where(lam < 640.0, 3.0 + 14.0 * ((lam - 330.0) / 310.0) ** 2, 15.0 + 15.0 * (lam - 640.0) / 380.0)
    return np.maximum(fwhm, 2.0) / 2.3548


def _smoothed_gaussian_lines(wavelength_nm, centres_nm, sigmas_nm, depths, lsf_sigma_nm):
    """Sum of Gaussian absorption lines after convolution with the LSF.

    ``depths`` is (stars, lines): central depth at infinite resolution. Returns (stars, wavelengths).
    """
    lam = np.asarray(wavelength_nm, dtype=float)
    out = np.zeros((depths.shape[0], lam.size))
    for j, (c, w) in enumerate(zip(centres_nm, sigmas_nm)):
        s = np.sqrt(np.asarray(w) ** 2 + lsf_sigma_nm**2)  # per wavelength
        profile = (w / s) * np.exp(-0.5 * ((lam - c) / s) ** 2)  # equivalent width conserved
        out += depths[:, j : j + 1] * profile[None, :]
    return out


def line_depths(teff_k, logg_cgs, m_h_dex):
    """Central depths of the Balmer and metal lines (stars x lines) and their widths.

    Balmer lines peak near 9500 K and broaden with gravity (pressure broadening); metal lines
    strengthen with [M/H] and towards cool stars; Na D and Mg b grow with gravity, the Ca II
    triplet weakens with it (a classic dwarf/giant discriminant).
    """
    t = np.asarray(teff_k, dtype=float)
    g = np.asarray(logg_cgs, dtype=float)
    m = np.asarray(m_h_dex, dtype=float)
    hyd = 0.55 * np.exp(-0.5 * ((t - 9500.0) / 2200.0) ** 2) + 0.12 * np.clip((t - 4000.0) / 3000.0, 0, 1)
    balmer_depth = np.repeat(hyd[:, None], len(BALMER_LINES_NM), axis=1) * np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    balmer_sigma = 0.8 + 0.5 * np.clip(g - 3.0, 0, 2)  # wider wings in dwarfs (per star)
    metal = 10.0 ** (0.35 * np.clip(m, -2.5, 0.6)) * np.clip((7000.0 - t) / 2500.0, 0.05, 1.3)
    grav = g - 2.5
    depth = np.stack(
        [
            0.55 * metal,  # Ca K
            0.50 * metal,  # Ca H
            0.30 * metal * np.clip((6200.0 - t) / 1500.0, 0, 1.2),  # G band
            0.35 * metal * (1.0 + 0.50 * grav),  # Mg b (MgH in dwarfs)
            0.40 * metal * (1.0 + 0.60 * grav),  # Na D
            0.35 * metal * (1.0 - 0.30 * grav),  # Ca triplet
            0.45 * metal * (1.0 - 0.30 * grav),
            0.40 * metal * (1.0 - 0.30 * grav),
        ],
        axis=1,
    )
    return balmer_depth, balmer_sigma, np.clip(depth, 0.0, 0.95)


def blanketing(wavelength_nm, teff_k, m_h_dex, logg_cgs=None):
    """Multiplicative blue line blanketing exp(-tau), tau growing to the UV, with [M/H], for cool stars
    and (CN bands, lower continuous opacity) for giants."""
    lam = np.asarray(wavelength_nm, dtype=float)[None, :]
    t = np.asarray(teff_k, dtype=float)[:, None]
    m = np.asarray(m_h_dex, dtype=float)[:, None]
    strength = 0.10 * 10.0 ** (0.5 * np.clip(m, -2.5, 0.6)) * (5500.0 / t) ** 3
    if logg_cgs is not None:
        strength = strength * (1.0 + 0.5 * np.clip(3.5 - np.asarray(logg_cgs, float)[:, None], -1.5, 3.0))
    return np.exp(-strength * np.clip(450.0 / lam, 0, None) ** 4)


def balmer_jump(wavelength_nm, teff_k, logg_cgs):
    """Flux deficit blueward of 364.6 nm for A/F stars, larger at low gravity."""
    lam = np.asarray(wavelength_nm, dtype=float)[None, :]
    t = np.asarray(teff_k, dtype=float)[:, None]
    g = np.asarray(logg_cgs, dtype=float)[:, None]
    amp = 0.45 * np.exp(-0.5 * ((t - 8500.0) / 1800.0) ** 2) * (1.0 + 0.15 * (4.0 - g))
    edge = 1.0 / (1.0 + np.exp((lam - 364.6) / 3.0))  # smooth at XP resolution
    return 1.0 - np.clip(amp, 0, 0.8) * edge


def tio_bands(wavelength_nm, teff_k, logg_cgs, m_h_dex):
    """TiO absorption for Teff < 4000 K: sawtooth bands with a sharp head, degrading to the red."""
    lam = np.asarray(wavelength_nm, dtype=float)[None, :]
    t = np.asarray(teff_k, dtype=float)
    s = np.clip((4000.0 - t) / 700.0, 0, None) ** 1.5 * 10.0 ** (0.3 * np.clip(m_h_dex, -2.5, 0.6))
    s = s * (1.0 + 0.1 * (np.asarray(logg_cgs) < 3.0))
    tau = np.zeros((t.size, lam.shape[1]))
    for head in TIO_BAND_HEADS_NM:
        x = lam - head
        rise = 1.0 / (1.0 + np.exp(-x / 4.0))
        tau += rise * np.exp(-np.clip(x, 0, None) / 40.0)
    return np.exp(-0.35 * s[:, None] * tau)


def surface_flux_xp(wavelength_nm, teff_k, logg_cgs, m_h_dex):
    """Stellar surface flux (W m^-2 nm^-1) at Gaia XP resolution on the given grid (stars x grid)."""
    lam = np.asarray(wavelength_nm, dtype=float)
    lsf = xp_lsf_sigma_nm(lam)
    cont = planck_flux_nm(lam, teff_k) * blanketing(lam, teff_k, m_h_dex, logg_cgs) * balmer_jump(lam, teff_k, logg_cgs)
    bal_d, bal_w, met_d = line_depths(teff_k, logg_cgs, m_h_dex)
    lines = np.zeros((np.size(teff_k), lam.size))
    # Balmer widths differ per star: loop over the few lines, vectorised over stars and pixels.
    for j, c in enumerate(BALMER_LINES_NM):
        s = np.sqrt(bal_w[:, None] ** 2 + lsf[None, :] ** 2)
        lines += bal_d[:, j : j + 1] * (bal_w[:, None] / s) * np.exp(-0.5 * ((lam[None, :] - c) / s) ** 2)
    lines += _smoothed_gaussian_lines(lam, [m[0] for m in METAL_LINES], [m[1] for m in METAL_LINES], met_d, lsf)
    return cont * np.clip(1.0 - lines, 0.02, 1.0) * tio_bands(lam, teff_k, logg_cgs, m_h_dex)


def surface_flux_ir(wavelength_nm, teff_k):
    """Near-infrared surface flux (W m^-2 nm^-1): the Planck continuum, where the IR SED is smooth."""
    return planck_flux_nm(wavelength_nm, teff_k)


def twomass_grid(points_per_band: int = 25):
    """Wavelength grid (nm) and Gaussian passband weights for J, H, K."""
    grids, weights = {}, {}
    for band, (c, s, _) in TWOMASS_BANDS.items():
        lam = np.linspace(c - 3 * s, c + 3 * s, points_per_band)
        w = np.exp(-0.5 * ((lam - c) / s) ** 2)
        grids[band], weights[band] = lam, w / w.sum()
    return grids, weights


def twomass_abs_mags(teff_k, radius_rsun_, ext_mag_per_av=None, a_v_mag=None):
    """2MASS J, H, K magnitudes at 10 pc (optionally reddened), from band-averaged flux densities.

    ``ext_mag_per_av`` maps band -> A_lambda/A_V on that band's grid; ``a_v_mag`` is per star.
    """
    grids, weights = twomass_grid()
    dil = dilution(radius_rsun_, 10.0)
    out = {}
    for band, (_, _, f0) in TWOMASS_BANDS.items():
        f = surface_flux_ir(grids[band], teff_k) * dil[:, None]
        if ext_mag_per_av is not None and a_v_mag is not None:
            f = f * 10.0 ** (-0.4 * np.asarray(a_v_mag)[:, None] * ext_mag_per_av[band][None, :])
        out[band] = -2.5 * np.log10((f * weights[band][None, :]).sum(axis=1) / f0)
    return out
