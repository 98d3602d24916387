"""Summary tables for the claims' and findings' tests."""

import numpy as np
import pandas as pd

from pipeline.evaluate.summary import COLUMNS


def _summary(rows):
    """A summary table (summary.csv's columns) of the given rows, NaN where a row says nothing."""
    return pd.DataFrame([{c: r.get(c, np.nan) for c in COLUMNS} for r in rows], columns=COLUMNS)


# a row of task "x": a model at 90 [85, 95], 0.9 [0.85, 0.96] of its expert
RATIO_ROW = {"task": "x", "target": "teff", "metric": "a", "model": 90, "model_lo": 85, "model_hi": 95}
RATIO_ROW.update(model_over_xgboost=0.9, ratio_lo=0.85, ratio_hi=0.96)
