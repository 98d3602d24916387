"""catalog_all against the mock's truth: the model's answers for XP sources it never saw labels of.

Every source of the all-sky XP population (none is an APOGEE star) is compared with its true
Teff, logg, [M/H], ln E(B-V) (on the map's scale, as the token) and g_fakemag (true parallax x
10^(G/5)): the robust scatter (MAD standard deviation) and bias (median) of answer - truth, in
bins of G and by population (dwarfs logg >= 3.5, giants logg < 3.5, metal-poor [M/H] < -1), the
spread of the z-scores (answer - truth) / sigma (1 when the predicted sigmas are right), and
whether the out-of-distribution flag marks the larger errors. Written to
``results/eval/catalog_all/metrics.json`` with a ``summary`` list for ``summary.csv``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..stats import median_mad_std
from .data import summary_row
from .intervals import PerStar

log = logging.getLogger(__name__)

LABELS = ("teff", "logg", "m_h", "logebv", "g_fakemag")
G_BINS = (6.0, 12.0, 14.0, 15.0, 16.0, 17.0, 17.65)
LOG_EBV_FLOOR = -7.0


def truth_values(truth: pd.DataFrame) -> pd.DataFrame:
    """The tokens' true values: ln E(B-V) on the map's scale (floored at e^-7 as the catalog
    floors it) and g_fakemag = parallax 10^(G/5) with the true parallax and G."""
    return pd.DataFrame(
        {
            "source_id": truth.source_id.to_numpy(np.int64),
            "teff": truth.teff.to_numpy(float),
            "logg": truth.logg.to_numpy(float),
            "m_h": truth.m_h.to_numpy(float),
            "logebv": np.log(np.clip(truth.ebv_c19.to_numpy(float), np.exp(LOG_EBV_FLOOR), None)),
            "g_fakemag": truth.parallax_true_mas.to_numpy(float) * 10 ** (0.2 * truth.g_true.to_numpy(float)),
        }
    )


def _stats(d, z) -> dict:
    ok = np.isfinite(d)
    if ok.sum() < 5:
        return {"n": int(ok.sum()), "scatter": float("nan"), "bias": float("nan"), "z_spread": float("nan")}
    med, mad = median_mad_std(d[ok])
    zk = z[np.isfinite(z)]
    return {
        "n": int(ok.sum()),
        "scatter": float(mad),
        "bias": float(med),
        "z_spread": float(median_mad_std(zk)[1]) if zk.size else float("nan"),
    }


def populations(true: pd.DataFrame) -> dict:
    return {
        "all": np.ones(len(true), bool),
        "dwarfs": true.logg.ge(3.5).to_numpy(),
        "giants": true.logg.lt(3.5).to_numpy(),
        "metal_poor": true.m_h.lt(-1.0).to_numpy(),
    }


def judge(answers: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """(metrics, the joined table the figures draw) of the answers against the truth."""
    true = truth_values(truth).set_index("source_id").reindex(answers.source_id.to_numpy())
    missing = true.teff.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} answered source(s) have no truth (e.g. {answers.source_id[missing][:3].tolist()}): is the truth of this sky?"
        )
    true = true.reset_index(drop=True)
    answers = answers.reset_index(drop=True)
    ood = answers.ood.to_numpy(bool)
    g = answers.phot_g_mean_mag.to_numpy(float)
    pops = populations(true)
    metrics = {
        "task": "catalog_all",
        "n_sources": int(len(answers)),
        "n_answered": int(answers.teff.notna().sum()),
        "n_ood": int(ood.sum()),
        "labels": {},
    }
    joined = {"phot_g_mean_mag": g, "ood": ood, **{f"true_{k}": true[k].to_numpy() for k in LABELS}}
    for t in LABELS:
        pred, sig, tv = answers[t].to_numpy(float), answers[f"{t}_err"].to_numpy(float), true[t].to_numpy(float)
        d = (pred - tv) / tv if t == "g_fakemag" else pred - tv  # g_fakemag: relative
        z = (pred - tv) / sig
        joined[f"d_{t}"], joined[f"z_{t}"] = d, z
        m = {"in_distribution": _stats(d[~ood], z[~ood]), "out_of_distribution": _stats(d[ood], z[ood])}
        m["populations"] = {p: _stats(d[sel & ~ood], z[sel & ~ood]) for p, sel in pops.items()}
        m["g_bins"] = [
            {"g_min": lo, "g_max": hi, **_stats(d[(g >= lo) & (g < hi) & ~ood], z[(g >= lo) & (g < hi) & ~ood])}
            for lo, hi in zip(G_BINS[:-1], G_BINS[1:])
        ]
        a_in, a_out = np.nanmedian(np.abs(d[~ood])) if (~ood).any() else np.nan, np.nanmedian(np.abs(d[ood])) if ood.any() else np.nan
        m["ood_error_ratio"] = float(a_out / a_in) if np.isfinite(a_in) and a_in > 0 else float("nan")  # > 1: the flag marks larger errors
        m["relative"] = t == "g_fakemag"
        metrics["labels"][t] = m
        log.info(
            "catalog_all %s: scatter %.4g (bias %.3g, z spread %.2f) over %d in-distribution sources; OOD |error| / in-distribution %.2f",
            t,
            m["in_distribution"]["scatter"],
            m["in_distribution"]["bias"],
            m["in_distribution"]["z_spread"],
            m["in_distribution"]["n"],
            m["ood_error_ratio"],
        )
    metrics["summary"] = [
        row
        for t, m in metrics["labels"].items()
        for row in (
            summary_row(
                "catalog_all",
                t,
                "robust scatter, XP sources in distribution" + (" (relative)" if m["relative"] else ""),
                PerStar(joined[f"d_{t}"][~ood]),
            ),
            summary_row("catalog_all", t, "z-score spread, in distribution", PerStar(joined[f"z_{t}"][~ood])),
            summary_row("catalog_all", t, "median |error| flagged OOD / in distribution", m["ood_error_ratio"]),
        )
    ]
    return metrics, pd.DataFrame(joined)


def evaluate_catalog_all(parts, truth_path, metrics_path, predictions_path) -> dict:
    """Judge every partition's answers against the truth; write metrics.json and the joined table
    (``predictions_path``, table ``judged``) its figures draw."""
    from ..io.atomic import write_json
    from ..io.tables import write_tables

    cols = ["source_id", "phot_g_mean_mag", "ood", *[c for t in LABELS for c in (t, f"{t}_err")]]
    answers = pd.concat([pd.read_parquet(p, columns=cols) for p in parts], ignore_index=True)
    truth = pd.read_parquet(truth_path, columns=["source_id", "teff", "logg", "m_h", "ebv_c19", "parallax_true_mas", "g_true"])
    metrics, table = judge(answers, truth)
    write_tables(predictions_path, {"judged": table})
    write_json(metrics, metrics_path)
    return metrics
