"""Robust statistics used across stages."""

from __future__ import annotations

import numpy as np

MAD_TO_STD = 1.4826  # MAD of a Gaussian times 1.4826 is its standard deviation


def median_mad_std(values) -> tuple[float, float]:
    """Median and MAD-based standard deviation (1.4826 x median absolute deviation) of the finite values."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    med = np.median(v)
    return float(med), float(MAD_TO_STD * np.median(np.abs(v - med)))
