"""The wavelength encoding of SpectraFM (Koblischke & Bovy 2024, eqs. 2-3): every pixel token shares
one value embedding and is told apart by a sinusoidal function of its wavelength, added to it.

    lambda_hat = (lambda - lambda_min) / (lambda_max - lambda_min)                      (3)
    PE(lambda_hat, k) = sin(1000 lambda_hat / 10000^(k / d_model))        for even k,
                        cos(1000 lambda_hat / 10000^((k - 1) / d_model))  for odd k     (2)

The paper prints k / d_model in both lines; the published code (Koblischke & Bovy's
``positional_encoding_spectral``) gives each cos the frequency of the sin before it, the usual
Transformer pairing, and its models were trained so: the code is followed here.
"""

from __future__ import annotations

import numpy as np

LAMBDA_MIN_AA, LAMBDA_MAX_AA = 15_000.0, 17_000.0  # the paper's range for APOGEE


def normalised_wavelength(wavelength_aa, lambda_min_aa: float = LAMBDA_MIN_AA, lambda_max_aa: float = LAMBDA_MAX_AA):
    """Eq. 3: 0 at lambda_min, 1 at lambda_max (outside the range it extrapolates linearly)."""
    return (np.asarray(wavelength_aa, float) - lambda_min_aa) / (lambda_max_aa - lambda_min_aa)


def wavelength_encoding(wavelength_aa, d_model: int, lambda_min_aa: float = LAMBDA_MIN_AA, lambda_max_aa: float = LAMBDA_MAX_AA):
    """Eq. 2 for each wavelength: an array of shape (..., d_model)."""
    x = 1000.0 * normalised_wavelength(wavelength_aa, lambda_min_aa, lambda_max_aa)[..., None]
    k = np.arange(d_model)
    angle = x / 10000.0 ** (2 * (k // 2) / d_model)
    return np.where(k % 2 == 0, np.sin(angle), np.cos(angle))
