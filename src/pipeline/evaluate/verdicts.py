"""How a claim's test is judged on intervals: the rows of summary.csv a claim reads (``Row``), the
comparisons (``Between`` and its shorthands, ``Less``, ``All``) and the verdicts they give. The claims
themselves, with their thresholds and sources, are ``claims.CLAIMS``.

- ``reproduced``: the whole interval of our quantity satisfies the claim;
- ``not reproduced``: the whole interval contradicts it;
- ``inconclusive``: the interval straddles the claim's boundary (or there is none to judge);
- ``not run``: the task that measures it is not part of this run (e.g. SpectraFM switched off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
CALIBRATED = (2 / 3, 3 / 2)  # "reasonable uncertainties": the robust spread of (prediction - truth) / sigma


@dataclass(frozen=True)
class Row:
    """A row of summary.csv (task, target, metric) and which of its numbers: the model's value
    (``model``), the ratio model / expert (``ratio``), or the model over the row's noise floor
    (``over_floor``)."""

    task: str
    target: str
    metric: str
    of: str = "model"

    def interval(self, summary: pd.DataFrame) -> tuple[float, float, float] | None:
        """(value, lo, hi) of this row's number in ``summary``, or None when the row is absent."""
        hit = summary[(summary.task == self.task) & (summary.target == self.target) & (summary.metric == self.metric)]
        if hit.empty:
            return None
        r = hit.iloc[0]
        if self.of == "model":
            return float(r.model), float(r.model_lo), float(r.model_hi)
        if self.of == "ratio":
            return float(r.model_over_xgboost), float(r.ratio_lo), float(r.ratio_hi)
        if self.of == "over_floor":
            f = float(r.noise_floor)
            return float(r.model) / f, float(r.model_lo) / f, float(r.model_hi) / f
        raise ValueError(f"Row.of must be model, ratio or over_floor, not {self.of!r}")

    def __str__(self):
        what = {"model": "", "ratio": " / XGBoost", "over_floor": " / noise floor"}[self.of]
        return f"{self.task}: {self.target} {self.metric}{what}"


@dataclass(frozen=True)
class Between:
    """The row's number lies in [lo, hi] (either may be infinite)."""

    row: Row
    lo: float = -math.inf
    hi: float = math.inf

    def rows(self):
        return (self.row,)

    def judge(self, summary):
        got = self.row.interval(summary)
        if got is None:
            return None
        value, lo, hi = got
        return value, lo, hi, verdict_between(lo, hi, self.lo, self.hi), fmt(value, lo, hi)

    def line(self, summary) -> dict:
        """What the claim's number is judged against, for the forest plot: the side it must lie on
        (below / above / inside) and the line (``line_lo`` = ``line_hi``) or band."""
        if math.isinf(self.lo):
            return {"side": "below", "line_lo": self.hi, "line_hi": self.hi}
        if math.isinf(self.hi):
            return {"side": "above", "line_lo": self.lo, "line_hi": self.lo}
        return {"side": "inside", "line_lo": self.lo, "line_hi": self.hi}

    def describe(self):
        if math.isinf(self.lo):
            return f"< {self.hi:g}"
        if math.isinf(self.hi):
            return f"> {self.lo:g}"
        return f"in [{self.lo:.3g}, {self.hi:.3g}]"


def Below(row: Row, bound: float) -> Between:  # noqa: N802 (reads as a comparison)
    return Between(row, hi=bound)


def Above(row: Row, bound: float) -> Between:  # noqa: N802
    return Between(row, lo=bound)


def Similar(row: Row, band: float) -> Between:  # noqa: N802
    """The row's ratio inside [1/band, band]: its whole interval, so a ratio whose interval leaves 1
    far outside the paper's own "similar" is not called so."""
    return Between(row, 1 / band, band)


def Calibrated(row: Row) -> Between:  # noqa: N802
    return Between(row, *CALIBRATED)


@dataclass(frozen=True)
class Less:
    """An ordering: the first row's number is below ``factor`` x the second's. Judged by the two
    intervals side by side, or, with ``paired`` (a row of the ratio lesser / greater over the same
    stars, bootstrapped together), by the paired ratio's interval against ``factor``."""

    lesser: Row
    greater: Row
    factor: float = 1.0
    paired: Row | None = None

    def rows(self):
        return (self.lesser, self.greater) + ((self.paired,) if self.paired else ())

    def judge(self, summary):
        a, b = self.lesser.interval(summary), self.greater.interval(summary)
        if a is None or b is None:
            return None
        f = self.factor
        if self.paired is None:
            return a[0], a[1], a[2], verdict_less(a[1], a[2], f * b[1], f * b[2]), f"{fmt(*a)} vs {fmt(*b)}"
        r = self.paired.interval(summary)
        if r is None:
            return None
        return r[0], r[1], r[2], verdict_between(r[1], r[2], -math.inf, f), f"{fmt(*a)} vs {fmt(*b)}; ratio {fmt(*r)}"

    def line(self, summary) -> dict:
        """Paired: the paired ratio below ``factor``; otherwise the first number below ``factor`` x the
        second's, whose own interval is the band of the line."""
        if self.paired is not None:
            return {"side": "below", "line_lo": self.factor, "line_hi": self.factor}
        b = self.greater.interval(summary) or (math.nan,) * 3
        return {"side": "below", "line_lo": self.factor * b[1], "line_hi": self.factor * b[2]}

    def describe(self):
        scale = "" if self.factor == 1 else f"{self.factor:.3g} x "
        if self.paired is not None:
            return f"paired ratio < {self.factor:g}: {self.paired.metric} ({self.paired.target})"
        return f"< {scale}{self.greater.metric} ({self.greater.target})"


@dataclass(frozen=True)
class All:
    """Every one of ``tests`` holds (a finding with two sides, e.g. Fig. 12's switch): reproduced when
    each is, not reproduced when any is not, else inconclusive. The value shown is the first test's."""

    tests: tuple

    def rows(self):
        return tuple(r for t in self.tests for r in t.rows())

    def judge(self, summary):
        judged = [t.judge(summary) for t in self.tests]
        if any(j is None for j in judged):
            return None
        verdicts = [j[3] for j in judged]
        verdict = NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE
        first = judged[0]
        return first[0], first[1], first[2], verdict, "; ".join(j[4] for j in judged)

    def line(self, summary) -> dict:
        """The first test's line, and the second test's number beside it (``second``, ``second_lo``,
        ``second_hi``; a switch's two sides share one line)."""
        out = self.tests[0].line(summary)
        if len(self.tests) > 1:
            got = self.tests[1].judge(summary)
            if got is not None:
                out.update(second=got[0], second_lo=got[1], second_hi=got[2])
        return out

    def describe(self):
        return " and ".join(f"{t.rows()[0].metric} {t.describe()}" for t in self.tests)


def verdict_between(lo: float, hi: float, bound_lo: float, bound_hi: float) -> str:
    """Reproduced when the interval [lo, hi] lies inside [bound_lo, bound_hi], not reproduced when
    it lies wholly outside, inconclusive when it straddles a bound or is unknown (NaN)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if bound_lo <= lo and hi <= bound_hi:
        return REPRODUCED
    if hi < bound_lo or lo > bound_hi:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def verdict_less(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> str:
    """A < B: reproduced when A's interval lies below B's, not reproduced when above, else inconclusive."""
    if not all(math.isfinite(x) for x in (a_lo, a_hi, b_lo, b_hi)):
        return INCONCLUSIVE
    if a_hi < b_lo:
        return REPRODUCED
    if a_lo > b_hi:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def fmt(value: float, lo: float, hi: float) -> str:
    """'1.25 [1.18, 1.32]' (three significant figures), or the value alone without an interval."""
    if not math.isfinite(value):
        return "n/a"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{value:.3g} [{lo:.3g}, {hi:.3g}]"
    return f"{value:.3g}"


def seeds_verdict(verdicts) -> str:
    """A claim's verdict over seeds: reproduced (or not reproduced) only when every seed's training
    says so by its own bootstrap interval; inconclusive when the seeds disagree or any is
    inconclusive, so a claim that holds for one seed's luck is not called reproduced."""
    verdicts = [v for v in verdicts if v != NOT_RUN]
    if not verdicts:
        return NOT_RUN
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if all(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    return INCONCLUSIVE
