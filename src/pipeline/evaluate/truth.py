"""What only the mock sky knows: its noise-free spectra for given parameters, through the XP
representation, and the extinction law it injects. The one module outside ``sky/`` that imports
the mock; the tasks that compare with the mock's truth take it from here.
"""

from __future__ import annotations

import numpy as np

from ..gaia.photometry import g_flux_e_per_s
from ..gaia.xp import synthetic_gaia_mags
from ..sky.build import R_V as INJECTED_R_V
from ..sky.build import model_spectrum
from ..sky.xp import project_spectrum

__all__ = ["INJECTED_R_V", "true_normalised_coefficients", "true_xp_coefficients"]


def true_xp_coefficients(teff, logg, m_h, ebv_true, radius_rsun=1.0, distance_pc=10.0):
    """The mock's noise-free XP coefficients ({"bp", "rp"}: stars x 55) of stars with these parameters."""
    n = np.size(teff)
    flux = model_spectrum(
        np.atleast_1d(teff),
        np.atleast_1d(logg),
        np.atleast_1d(m_h),
        np.broadcast_to(radius_rsun, (n,)),
        np.broadcast_to(distance_pc, (n,)),
        np.broadcast_to(ebv_true, (n,)),
    )
    return project_spectrum(flux)


def true_normalised_coefficients(teff, logg, m_h, ebv_true=0.0):
    """The mock's noise-free G-normalised XP coefficients of stars with these parameters (shape only)."""
    c = true_xp_coefficients(teff, logg, m_h, ebv_true)
    g = synthetic_gaia_mags(c)[:, 0]
    f_g = g_flux_e_per_s(g)[:, None]
    return c["bp"] / f_g, c["rp"] / f_g
