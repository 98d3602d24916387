"""Bootstrap intervals for the evaluation's headline numbers.

A summary number is a statistic of per-star values (residuals, z-scores, per-star fractions). A
task hands ``summary_row`` a ``PerStar`` (the values and the statistic) instead of a float; the
row then carries the statistic, its percentile-bootstrap interval over the stars, and, where the
model and its XGBoost expert are scored on the same stars, the interval of their ratio from the
*same* resamples (a paired bootstrap: the stars that are hard for one are hard for the other, so
the ratio is known far better than either number alone).

Resamples are drawn from a generator seeded by the number of stars alone, so every row over the
same stars uses the same resamples, and the same inputs give the same intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..stats import robust_scatter

RESAMPLES = 1000  # bootstrap resamples per row
CONFIDENCE = 0.95  # central interval: the 2.5th to 97.5th percentile of the resampled statistic
SEED = 20230821  # with the number of stars, seeds the resamples (the same stars: the same resamples)


def rms(values: np.ndarray) -> np.ndarray | float:
    """Root mean square of the finite values along the last axis."""
    return np.sqrt(np.nanmean(np.asarray(values, float) ** 2, axis=-1))


def median(values: np.ndarray) -> np.ndarray | float:
    return np.nanmedian(np.asarray(values, float), axis=-1)


def mean(values: np.ndarray) -> np.ndarray | float:
    return np.nanmean(np.asarray(values, float), axis=-1)


@dataclass
class PerStar:
    """Per-star values (shape (stars,) or (stars, ...)) and the statistic that makes them one number.

    ``stat`` takes an array whose *first* axis runs over stars; the vectorised statistics above
    (``robust_scatter``, ``rms``, ``median``, ``mean``) are applied along the stars for 1-D values
    and to many resamples at once. Any other callable is applied to each resample in turn.
    NaN marks a star without a value (it is resampled like the others and ignored by the statistic).
    """

    values: np.ndarray
    stat: Callable = robust_scatter

    def __post_init__(self):
        self.values = np.asarray(self.values, float)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_finite(self) -> int:
        v = self.values.reshape(self.n, -1)
        return int(np.isfinite(v).any(axis=1).sum())

    def value(self) -> float:
        return float(self.stat(self.values))

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        """The statistic on each resample; ``idx``: (resamples, stars) indices into the stars."""
        if self.stat in _VECTORISED and self.values.ndim == 1:
            return np.asarray(self.stat(self.values[idx]), float)  # (resamples, stars) -> (resamples,)
        return np.array([float(self.stat(self.values[i])) for i in idx])


_VECTORISED = (robust_scatter, rms, median, mean)


def paired_ratio(a: PerStar, b: PerStar) -> PerStar:
    """a's statistic over b's, both of the same stars in the same order, as one ``PerStar`` whose
    resamples draw each star's pair of values together: the paired interval of an ordering (A beats
    B on the same stars), far tighter than two intervals compared side by side when the stars hard
    for one are hard for the other. Only the stars with both values count (a star that one of the
    two did not answer is NaN in both), so the ratio compares the two on exactly the same stars."""
    if a.n != b.n or a.stat is not b.stat or a.values.ndim != 1 or b.values.ndim != 1:
        raise ValueError(
            f"paired_ratio needs one value per star of the same stars and statistic: {a.values.shape} vs {b.values.shape}, {a.stat} vs {b.stat}"
        )
    both = np.isfinite(a.values) & np.isfinite(b.values)
    stat = a.stat
    pairs = np.column_stack([np.where(both, a.values, np.nan), np.where(both, b.values, np.nan)])
    return PerStar(pairs, lambda v: stat(v[:, 0]) / stat(v[:, 1]))


def resample_indices(n: int, resamples: int = RESAMPLES) -> np.ndarray:
    """(resamples, n) star indices drawn with replacement; the same for every row over n stars."""
    rng = np.random.default_rng([SEED, n])
    return rng.integers(0, n, size=(resamples, n))


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap replicates (NaN replicates ignored)."""
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if s.size < 10:
        return float("nan"), float("nan")
    a = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(s, [a, 100 - a])
    return float(lo), float(hi)


def bootstrap_interval(estimate: PerStar, resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile-bootstrap interval of ``estimate``'s statistic over its stars."""
    if estimate.n < 2:
        return float("nan"), float("nan")
    return percentile_interval(estimate.resampled(resample_indices(estimate.n, resamples)), confidence)


def interval_columns(model, xgboost=None, resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> dict:
    """The columns of a summary row for a model number and, optionally, its expert's: each value with
    its interval (NaN where a plain float was given), the number of stars, and the ratio
    model / expert with its interval when both are ``PerStar`` over the same stars (paired)."""
    out = {}
    reps = {}
    for name, est in (("model", model), ("xgboost", xgboost)):
        if isinstance(est, PerStar):
            out[name] = est.value()
            if est.n >= 2:
                reps[name] = est.resampled(resample_indices(est.n, resamples))
                out[f"{name}_lo"], out[f"{name}_hi"] = percentile_interval(reps[name], confidence)
            else:
                out[f"{name}_lo"] = out[f"{name}_hi"] = float("nan")
        else:
            out[name] = float("nan") if est is None else float(est)
            out[f"{name}_lo"] = out[f"{name}_hi"] = float("nan")
    out["n_stars"] = model.n_finite if isinstance(model, PerStar) else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out["model_over_xgboost"] = out["model"] / out["xgboost"] if out["xgboost"] else float("nan")
        if len(reps) == 2 and model.n == xgboost.n:  # the same stars: one resample serves both (paired)
            out["ratio_lo"], out["ratio_hi"] = percentile_interval(reps["model"] / reps["xgboost"], confidence)
        else:
            out["ratio_lo"] = out["ratio_hi"] = float("nan")
    return out
