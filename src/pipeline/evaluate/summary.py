"""results/eval/summary.csv: one row per (task, target, metric) with the model, the XGBoost expert
on the same inputs (where there is one) and the noise floor (where the mock knows one)."""

from __future__ import annotations

import pandas as pd

from ..io.atomic import atomic_path
from .data import read_metrics

COLUMNS = ["task", "target", "metric", "model", "xgboost", "noise_floor"]


def summary_table(metrics_paths) -> pd.DataFrame:
    rows = []
    for p in metrics_paths:
        m = read_metrics(p)
        if "summary" not in m:
            raise ValueError(f"{p}: no 'summary' list; was it written by pipeline.evaluate?")
        rows += m["summary"]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["model_over_xgboost"] = df.model / df.xgboost
    return df


def write_summary(metrics_paths, out_csv) -> pd.DataFrame:
    df = summary_table(metrics_paths)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return df
