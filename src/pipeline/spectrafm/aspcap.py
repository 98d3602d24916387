"""APOGEE DR17 spectra as ASPCAP ships them: the pixel grid, the ``aspcapStar`` files, and the
well-known H-band features SpectraFM's attention is compared with (Koblischke & Bovy 2024).

The grid is apStar's log-linear one (log10 lambda = 4.179 + 6e-6 i, i = 0..8574, vacuum
Angstrom) without the detector gaps: the three chips' ASPCAP ranges [246, 3274), [3585, 6080),
[6344, 8335), 7,514 pixels from 15,100 to 17,000 Angstrom.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

LOG_LAMBDA0, DLOG_LAMBDA, N_APSTAR = 4.179, 6e-6, 8575
ASPCAP_CHIPS = ((246, 3274), (3585, 6080), (6344, 8335))  # apStar pixel ranges kept by ASPCAP
# (element, vacuum wavelength in Angstrom) of well-known APOGEE features: Fe I, Mg I, Si I, OH bands
# as "O", the H Brackett series
APOGEE_FEATURES = (
    ("Fe", 15194.49),
    ("Fe", 15207.53),
    ("Fe", 15294.56),
    ("Fe", 15395.72),
    ("Fe", 15490.34),
    ("Fe", 15648.51),
    ("Fe", 15662.02),
    ("Fe", 15964.87),
    ("Fe", 16009.61),
    ("Fe", 16040.66),
    ("Fe", 16153.25),
    ("Fe", 16165.03),
    ("Fe", 16386.30),
    ("Fe", 16524.47),
    ("Fe", 16530.00),
    ("Fe", 16862.49),
    ("Mg", 15570.00),
    ("Mg", 15740.72),
    ("Mg", 15748.99),
    ("Mg", 15765.84),
    ("Mg", 15959.20),
    ("Mg", 16364.75),
    ("O", 15281.05),
    ("O", 15391.00),
    ("O", 16372.00),
    ("O", 16660.00),
    ("O", 16910.00),
    ("Si", 15376.83),
    ("Si", 15893.00),
    ("Si", 15964.42),
    ("Si", 16060.01),
    ("Si", 16094.79),
    ("Si", 16680.77),
    ("H", 15560.70),
    ("H", 15704.96),
    ("H", 15884.88),
    ("H", 16113.72),
    ("H", 16411.67),
    ("H", 16811.11),
)
ELEMENTS = ("Fe", "Mg", "O", "Si", "H")


def feature_list() -> pd.DataFrame:
    """The known APOGEE features (element, wavelength_aa; ``real`` True): the line list of real spectra."""
    return pd.DataFrame(APOGEE_FEATURES, columns=["element", "wavelength_aa"]).assign(real=True)


def apstar_wavelength_aa(n: int = N_APSTAR) -> np.ndarray:
    """apStar's log-linear vacuum wavelength grid (Angstrom)."""
    return 10.0 ** (LOG_LAMBDA0 + DLOG_LAMBDA * np.arange(n))


def aspcap_pixels() -> np.ndarray:
    """Indices into the apStar grid of the 7,514 pixels ASPCAP keeps (the detector gaps removed)."""
    return np.concatenate([np.arange(a, b) for a, b in ASPCAP_CHIPS])


def aspcap_wavelength_aa() -> np.ndarray:
    """The 7,514 ASPCAP wavelengths (vacuum Angstrom), about 15,100-17,000."""
    return apstar_wavelength_aa()[aspcap_pixels()]


def read_aspcapstar(path):
    """A real ``aspcapStar-dr17-*.fits``: (wavelength_aa, observed, observed_err, best_fit) on the
    7,514 ASPCAP pixels. HDU 1 is the observed normalised spectrum, HDU 2 its error, HDU 3 ASPCAP's
    best fit. Files on the full apStar grid (8,575 pixels, gaps as zeros) are cut to the chips;
    zeros and non-finite values become NaN."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        if len(hdul) < 4:
            raise ValueError(f"{path}: an aspcapStar file has HDU 1 (spectrum), 2 (error), 3 (best fit); found {len(hdul)} HDUs")
        arrays = [np.asarray(hdul[k].data, float).ravel() for k in (1, 2, 3)]
        header = hdul[1].header
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise ValueError(f"{path}: HDUs 1-3 have different lengths {[a.size for a in arrays]}")
    lam0, dlam = header.get("CRVAL1", LOG_LAMBDA0), header.get("CDELT1", DLOG_LAMBDA)
    if n == N_APSTAR:
        keep = aspcap_pixels()
        lam = 10.0 ** (lam0 + dlam * np.arange(n))[keep]
        arrays = [a[keep] for a in arrays]
    elif n == aspcap_pixels().size:
        lam = aspcap_wavelength_aa() if "CRVAL1" not in header else 10.0 ** (lam0 + dlam * np.arange(N_APSTAR))[aspcap_pixels()]
    else:
        raise ValueError(f"{path}: {n} pixels; expected 8,575 (apStar grid) or 7,514 (ASPCAP pixels)")
    flux, err, fit = (np.where(np.isfinite(a) & (a != 0), a, np.nan) for a in arrays)
    return lam, flux, err, fit


def apogee_id_from_filename(path) -> str:
    """``aspcapStar-dr17-2M00000002+7417074.fits`` -> ``2M00000002+7417074``."""
    m = re.match(r"aspcapStar-[^-]+-(.+)\.fits(\.gz)?$", Path(path).name)
    if not m:
        raise ValueError(f"{path}: not an aspcapStar-<release>-<APOGEE_ID>.fits file name")
    return m.group(1)
