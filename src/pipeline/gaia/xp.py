"""Gaia DR3 XP continuous spectra: the basis gaiaxpy ships, the calibration and the synthetic photometry.

``gaiaxpy.calibrate`` turns 55 BP and 55 RP coefficients into an absolute spectrum on the
336-1020 nm grid: flux = w_BP * (c_BP @ D_BP) + w_RP * (c_RP @ D_RP), with D the design
matrices and w the BP/RP merge weights (``calibrated_flux``). Synthetic G, BP and RP come from
the same coefficients through gaiaxpy's ``Gaia_DR3_Vega`` photometric system (``synthetic_gaia_mags``).
"""

from __future__ import annotations

import functools

import numpy as np

N_COEFF = 55
BANDS = ("bp", "rp")


@functools.lru_cache(maxsize=1)
def xp_basis():
    """Wavelength grid (nm), design matrices (55 x grid) and merge weights from gaiaxpy's default sampling."""
    from gaiaxpy.core.config import load_xpmerge_from_xml, load_xpsampling_from_xml

    grid, merge = load_xpmerge_from_xml(bp_model="v375wi")
    design = load_xpsampling_from_xml(bp_model="v375wi")
    return np.asarray(grid, float), {b: np.asarray(design[b], float) for b in BANDS}, {b: np.asarray(merge[b], float) for b in BANDS}


@functools.lru_cache(maxsize=1)
def photometric_vectors():
    """gaiaxpy's Gaia_DR3_Vega system: per band (55 x [G, BP, RP]) flux vectors and zero points."""
    from gaiaxpy import PhotometricSystem

    system = PhotometricSystem.Gaia_DR3_Vega.value
    sampling = system.load_xpsampling_from_xml()
    return {b: np.asarray(sampling[b], float) for b in BANDS}, np.asarray(system.get_zero_points(), float)


def calibrated_flux(coeffs: dict[str, np.ndarray]) -> np.ndarray:
    """The absolute spectrum gaiaxpy.calibrate returns for these coefficients (no truncation)."""
    _, design, merge = xp_basis()
    return merge["bp"] * (coeffs["bp"] @ design["bp"]) + merge["rp"] * (coeffs["rp"] @ design["rp"])


def synthetic_gaia_mags(coeffs: dict[str, np.ndarray]) -> np.ndarray:
    """G, BP, RP Vega magnitudes (stars x 3) from XP coefficients, as gaiaxpy.generate computes them."""
    vec, zp = photometric_vectors()
    flux = coeffs["bp"] @ vec["bp"] + coeffs["rp"] @ vec["rp"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, -2.5 * np.log10(flux) + zp, np.nan)
