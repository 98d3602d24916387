"""results/eval/summary.csv: one row per (task, target, metric) with the model, the XGBoost expert
on the same inputs (where there is one) and the noise floor (where the mock knows one); each number
with its bootstrap interval over the test stars (``_lo``/``_hi``, ``intervals.CONFIDENCE``) where the
task gave its per-star values, and the ratio model / expert with its paired interval."""

from __future__ import annotations

import pandas as pd

from ..io.atomic import atomic_path
from .data import read_metrics

COLUMNS = [
    "task",
    "target",
    "metric",
    "model",
    "model_lo",
    "model_hi",
    "xgboost",
    "xgboost_lo",
    "xgboost_hi",
    "model_over_xgboost",
    "ratio_lo",
    "ratio_hi",
    "noise_floor",
    "n_stars",
]


def summary_table(metrics_paths) -> pd.DataFrame:
    rows = []
    for p in metrics_paths:
        m = read_metrics(p)
        if "summary" not in m:
            raise ValueError(f"{p}: no 'summary' list; was it written by pipeline.evaluate?")
        rows += m["summary"]
    return pd.DataFrame(rows, columns=COLUMNS)


def write_summary(metrics_paths, out_csv) -> pd.DataFrame:
    df = summary_table(metrics_paths)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return df


def write_claims(summary: pd.DataFrame, tasks_run, out_csv) -> pd.DataFrame:
    """results/eval/claims.csv: every claim of the registry (``claims.CLAIMS``) judged on this summary."""
    from .claims import judge_claims

    table = judge_claims(summary, tasks_run)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table
