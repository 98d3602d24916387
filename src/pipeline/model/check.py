"""Held-out check of a trained model: parameters from XP and colours on validation-split stars.

The check is a development figure (what a change of recipe is judged by), so it reads the
validation split, never the test split that the evaluation and the claims keep for the verdicts.
Given bp0-29, rp0-29, J-H, J-K and BP-RP of validation stars, the model is asked for Teff, logg and
[M/H]; robust scatter against the APOGEE labels and against the mock's truth (when there is
one), and the calibration of the uncertainties: the standard deviation of (prediction - label)
/ sqrt(sigma_model^2 + sigma_label^2), which should be near 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import median_mad_std
from ..tokens.store import split_table
from .api import StellarModel

XP_COLOUR_INPUTS = tuple([f"bp{k}" for k in range(30)] + [f"rp{k}" for k in range(30)] + ["jh", "jk", "bprp"])
TARGETS = ("teff", "logg", "m_h")


CHECK_SPLIT = "val"  # the split the check scores: never "test" (tests/test_layers.py)


def check_table(store_path, catalog_path=None, split=CHECK_SPLIT):
    """The validation split's tokens (physical units) with source_id and, from the catalog, apogee_id."""
    df = split_table(store_path, split)
    if catalog_path is not None:  # catalog rows and store rows are the same stars in the same order
        df["apogee_id"] = pd.read_parquet(catalog_path, columns=["apogee_id"]).apogee_id.to_numpy()[df.row.to_numpy()]
    return df


def heldout_check(model_dir, store_path, catalog_path=None, truth_path=None, batch_size=4096):
    model = StellarModel.load(model_dir)
    df = check_table(store_path, catalog_path)
    usable = df[list(XP_COLOUR_INPUTS)].notna().any(axis=1) & df[list(TARGETS)].notna().any(axis=1)
    df = df[usable].reset_index(drop=True)
    pred = model.predict(df[list(XP_COLOUR_INPUTS)], TARGETS, batch_size=batch_size)
    truth = None
    if truth_path is not None and "apogee_id" in df:
        truth = pd.read_parquet(truth_path, columns=["apogee_id", *TARGETS]).set_index("apogee_id").reindex(df.apogee_id)
    out = {"inputs": "bp0-29, rp0-29, jh, jk, bprp", "split": CHECK_SPLIT, "n_stars": int(len(df)), "targets": {}}
    for t in TARGETS:
        ok = df[t].notna().to_numpy() & np.isfinite(pred[t].to_numpy())
        resid = pred[t].to_numpy()[ok] - df[t].to_numpy()[ok]
        sig = np.hypot(pred[f"{t}_err"].to_numpy()[ok], np.nan_to_num(df[f"{t}_err"].to_numpy()[ok]))
        z = resid / sig
        row = {
            "n": int(ok.sum()),
            "bias_vs_labels": median_mad_std(resid)[0],
            "robust_scatter_vs_labels": median_mad_std(resid)[1],
            "median_sigma_model": float(np.median(pred[f"{t}_err"].to_numpy()[ok])),
            "z_std": float(np.std(z)),
            "z_robust_std": median_mad_std(z)[1],
            "calibrated": bool(0.7 <= median_mad_std(z)[1] <= 1.4),
        }
        if truth is not None:
            rt = pred[t].to_numpy()[ok] - truth[t].to_numpy()[ok]
            zt = rt / pred[f"{t}_err"].to_numpy()[ok]
            row.update({"robust_scatter_vs_truth": median_mad_std(rt)[1], "z_robust_std_vs_truth": median_mad_std(zt)[1]})
        out["targets"][t] = row
    return out
