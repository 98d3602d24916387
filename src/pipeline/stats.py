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


def robust_scatter(values) -> np.ndarray | float:
    """1.4826 x the median absolute deviation of the finite values along the last axis (the papers' sigma)."""
    v = np.asarray(values, float)
    med = np.nanmedian(v, axis=-1, keepdims=True)
    return MAD_TO_STD * np.nanmedian(np.abs(v - med), axis=-1)


def median_mad_std_along(x) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD standard deviation along the last axis, NaN ignored; all-NaN rows give NaN.

    Rows without a NaN (the common case) take np.median, several times faster than np.nanmedian.
    """
    x = np.asarray(x, float)
    med = np.full(x.shape[:-1], np.nan)
    mad = np.full(x.shape[:-1], np.nan)
    finite = np.isfinite(x)
    full = finite.all(axis=-1)
    if full.any():
        v = x[full]
        med[full] = np.median(v, axis=-1)
        mad[full] = MAD_TO_STD * np.median(np.abs(v - med[full][..., None]), axis=-1)
    some = finite.any(axis=-1) & ~full  # a row whose every value is NaN keeps NaN (no warning)
    if some.any():
        v = x[some]
        med[some] = np.nanmedian(v, axis=-1)
        mad[some] = MAD_TO_STD * np.nanmedian(np.abs(v - med[some][..., None]), axis=-1)
    return med, mad
