"""Evaluation of SpectraFM (Koblischke & Bovy 2024) on the test split of the pixel store.

1. Table 1: the scatter (median |y_ref - y_pred|, the paper's definition) of each label from
   observed spectra in the first fine-tune's range, for the model pre-trained on synthetic
   spectra only and for the one fine-tuned on observed spectra; test stars with 1 < logg < 3.5.
   The pre-trained model reading synthetic spectra is listed too: the size of the synthetic gap.
   Beside them the expert, in the role of the paper's AstroNN column: the Cannon (baselines/cannon.py)
   fit to the observed spectra (every pixel) of the training giants, which tells how much of each
   label the spectra carry.
2. Fig. 4: [Fe/H] from the 512-pixel window of the last fine-tune, for the FCNN trained on the
   100 iron-rich stars, the pre-trained model, the first fine-tune and the 100-star fine-tune:
   RMSE over all test stars and over [Fe/H] < -1 (the paper, iron-poor: 0.763, 0.902, 0.510, 0.232
   for the FCNN, the pre-trained model, the first fine-tune and the last one; all stars: 0.254,
   0.210, 0.094 for the three stages); and the paper's ablation, the last fine-tune started from
   the pre-trained model (0.256 iron-poor, 0.100 all: "similar").
3. Attention: the pre-trained model's cross-attention for each label on synthetic test spectra:
   the share of the most-attended pixels within 1 Angstrom of a line of the label's element,
   against the share of all pixels (what attention blind to lines would give).
References are the mock's true labels (``true_<label>``) when present, else the observed labels.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..spectrafm.predict import attention, attention_enrichment, attention_selectivity, load_checkpoint, predict
from ..spectrafm.store import LABELS, SpectraStore
from .data import summary_row
from .intervals import PerStar, median, paired_ratio, rms

log = logging.getLogger(__name__)

PAPER_TABLE1 = {  # scatter: (pre-trained on synthetic, fine-tuned on real), Table 1
    "teff": (183.0, 19.0),
    "logg": (0.326, 0.056),
    "o_fe": (0.038, 0.021),
    "mg_fe": (0.034, 0.019),
    "fe_h": (0.048, 0.019),
}
PAPER_ASTRONN = {"teff": 10.0, "logg": 0.037, "o_fe": 0.020, "mg_fe": 0.015, "fe_h": 0.011}  # Table 1's AstroNN column
PAPER_FE_RMSE = {  # Section 4.1 and Fig. 4's panels: (all, [Fe/H] < -1)
    "fcnn": (None, 0.763),
    "pretrain": (0.254, 0.902),
    "finetune_real": (0.210, 0.510),
    "finetune_fe": (0.094, 0.232),
    "finetune_fe_direct": (0.100, 0.256),  # the ablation: finetune_fe started from the pre-trained model (spectrafm/plan.py)
}
FE_MODELS = ("fcnn", "pretrain", "finetune_real", "finetune_fe", "finetune_fe_direct")
# the paper's orderings of the transfer test (Sec. 4.1, Fig. 4): (better, worse), each a paired ratio row;
# the ablation's ratios: it beats the base, and is "similar" to the fine-tune through the observed stage
FE_ORDERINGS = (("finetune_real", "pretrain"), ("finetune_fe", "finetune_real"), ("finetune_fe", "fcnn"), ("finetune_real", "fcnn"))
FE_RATIOS = FE_ORDERINGS + (("finetune_fe_direct", "pretrain"), ("finetune_fe_direct", "finetune_fe"))


def _reference(stars: pd.DataFrame, label: str) -> np.ndarray:
    col = f"true_{label}"
    return stars[col].to_numpy(float) if col in stars else stars[label].to_numpy(float)


def _table1_selection(store: SpectraStore, rows, cfg) -> np.ndarray:
    """Table 1's stars among ``rows``: reference logg inside cfg.logg_range."""
    logg = _reference(store.stars.iloc[rows], "logg")
    return (logg > cfg.logg_range[0]) & (logg < cfg.logg_range[1])


def _table1_rows(model: str, kind: str, stars: pd.DataFrame, sel, predictions: dict, paper: dict):
    """Table 1 rows and per-star predictions of one model: ``predictions`` label -> (mean, sigma or None)."""
    out, preds = [], []
    for label, (mean, sigma) in predictions.items():
        ref = _reference(stars, label)
        d = (mean - ref)[sel]
        d = d[np.isfinite(d)]
        out.append(
            {
                "model": model,
                "spectra": kind,
                "label": label,
                "n": int(d.size),
                "scatter": float(np.median(np.abs(d))),
                "bias": float(np.median(d)),
                "paper": paper.get(label, np.nan),
            }
        )
        sigma = np.full(len(stars), np.nan) if sigma is None else sigma
        preds.append(
            pd.DataFrame(
                {
                    "model": model,
                    "spectra": kind,
                    "label": label,
                    "apogee_id": stars["apogee_id"].to_numpy(),
                    "reference": ref,
                    "prediction": mean,
                    "sigma": sigma,
                    "selected": sel,
                }
            )
        )
    return out, preds


def cannon_training_giants(store: SpectraStore, cfg):
    """(labels, rows, label values) of the training stars the Table 1 Cannon is fit to: every label of
    LABELS the store has, on the train split's stars that have them all, in Table 1's logg range."""
    labels = [label for label in LABELS if label in store.stars]
    train = np.flatnonzero((store.stars["split"] == "train").to_numpy())
    y = store.stars[labels].to_numpy(float)[train]
    logg = y[:, labels.index("logg")]
    keep = np.isfinite(y).all(1) & (logg > cfg.logg_range[0]) & (logg < cfg.logg_range[1])
    return labels, train[keep], y[keep]


def cannon_table1(store: SpectraStore, rows, cfg):
    """The expert's Table 1 rows: the Cannon of ``cfg.cannon_order`` fit to the observed spectra
    (every pixel) of the training stars in Table 1's logg range, with the labels the stages train
    on, read on the test stars' observed spectra (``cannon``); and the same fit to their synthetic
    spectra, read on the observed ones (``cannon_synthetic``): the synthetic gap as an expert sees it."""
    from ..baselines.cannon import fit_cannon, polynomial_terms

    labels, train, y = cannon_training_giants(store, cfg)
    cols = np.arange(store.wavelength_aa.size)
    order = next((k for k in range(cfg.cannon_order, 0, -1) if train.size > 2 * len(polynomial_terms(len(labels), k))), 0)
    if order < cfg.cannon_order:
        log.warning("the Cannon: %d training giants are too few for order %d; order %d (0: no expert)", train.size, cfg.cannon_order, order)
    if order == 0:
        return [], []
    sel = _table1_selection(store, rows, cfg)
    flux, err = store.read("observed", rows[sel], cols), store.read("observed_err", rows[sel], cols)
    stars = store.stars.iloc[rows]
    out, preds = [], []
    synthetic_only = {label: v[0] for label, v in PAPER_TABLE1.items()}
    for name, kind, paper in (("cannon", "observed", PAPER_ASTRONN), ("cannon_synthetic", "synthetic", synthetic_only)):
        cannon = fit_cannon(y, store.read(kind, train, cols), order=order)
        fitted = np.full((len(rows), len(labels)), np.nan)
        fitted[sel] = cannon.infer(flux, err)
        o, p = _table1_rows(name, "observed", stars, sel, {k: (fitted[:, j], None) for j, k in enumerate(labels)}, paper)
        out += o
        preds += p
    log.info(
        "the Cannon (order %d) on %d training giants' observed and synthetic spectra, read on %d test giants",
        order,
        train.size,
        int(sel.sum()),
    )
    return out, preds


def table1(store: SpectraStore, rows, models: dict, cfg: dict):
    """The Table 1 analogue: per label, the scatter of each model on the first fine-tune's range."""
    stage = load_checkpoint(models["finetune_real"])["stage"]
    lo, hi = stage.get("range_aa") or (None, None)
    cols = store.pixels_in(lo, hi)
    stars = store.stars.iloc[rows]
    sel = _table1_selection(store, rows, cfg)
    runs = (("pretrain", "synthetic"), ("pretrain", "observed"), ("finetune_real", "observed"))
    out, preds = [], []
    for model, kind in runs:
        p = predict(models[model], store.read(kind, rows, cols), store.wavelength_aa[cols], batch_size=cfg.batch_size)
        paper = {label: v[model == "finetune_real"] for label, v in PAPER_TABLE1.items()}
        o, pr = _table1_rows(model, kind, stars, sel, p, paper)
        out += o
        preds += pr
    if cfg.cannon_order > 0:
        o, pr = cannon_table1(store, rows, cfg)
        out += o
        preds += pr
    return out, pd.concat(preds, ignore_index=True), [float(store.wavelength_aa[cols[0]]), float(store.wavelength_aa[cols[-1]])]


def fe_window(store: SpectraStore, rows, models: dict, cfg: dict):
    """[Fe/H] of every test star from the last fine-tune's window, by each model."""
    ckpt = load_checkpoint(models["finetune_fe"])
    stage = ckpt["stage"]
    cols = store.pixels_in(centre_aa=stage["window_centre_aa"], n_pixels=stage["window_pixels"])
    stars = store.stars.iloc[rows]
    ref = _reference(stars, "fe_h")
    poor = ref < cfg.fe_h_poor
    flux = store.read("observed", rows, cols)
    out, preds = {}, []
    for model in (m for m in FE_MODELS if m in models):  # a run without the ablation's stage leaves it out
        mean, sigma = predict(models[model], flux, store.wavelength_aa[cols], labels=["fe_h"])["fe_h"]
        r = mean - ref
        out[model] = {
            "rmse_all": _rmse(r),
            "rmse_fe_h_poor": _rmse(r[poor]),
            "bias_fe_h_poor": float(np.nanmedian(r[poor])) if poor.any() else np.nan,
            "rmse_fe_h_rich": _rmse(r[~poor]),
            "paper_rmse_all": PAPER_FE_RMSE[model][0],
            "paper_rmse_fe_h_poor": PAPER_FE_RMSE[model][1],
        }
        preds.append(
            pd.DataFrame({"model": model, "apogee_id": stars["apogee_id"].to_numpy(), "reference": ref, "prediction": mean, "sigma": sigma})
        )
    window = [float(store.wavelength_aa[cols[0]]), float(store.wavelength_aa[cols[-1]])]
    return out, pd.concat(preds, ignore_index=True), window, int(poor.sum()), int(stage.get("n_train", 0))


def attention_maps(store: SpectraStore, rows, models: dict, cfg: dict, lines: pd.DataFrame):
    a = cfg.attention
    rows = rows[: int(a.n_stars)]
    cols = np.arange(store.wavelength_aa.size)
    flux = store.read("synthetic", rows, cols)
    maps = attention(
        models["pretrain"], flux, store.wavelength_aa, list(a.labels), lines, top_k=int(a.top_k), tolerance_aa=float(a.tolerance_aa)
    )
    summaries = [s for s, _ in maps]
    profiles = [pd.DataFrame({"label": s["label"], "wavelength_aa": store.wavelength_aa, "attention": prof}) for s, prof in maps]
    return summaries, pd.concat(profiles, ignore_index=True)


def _table1_errors(pred: pd.DataFrame, row: dict) -> PerStar:
    """|prediction - reference| of a Table 1 row's selected stars, and their median (the paper's scatter)."""
    t = pred[(pred.model == row["model"]) & (pred.spectra == row["spectra"]) & (pred.label == row["label"]) & pred.selected]
    return PerStar(np.abs(t.prediction.to_numpy(float) - t.reference.to_numpy(float)), median)


def _fe_residuals(pred: pd.DataFrame, model: str, poor_below: float | None) -> PerStar:
    """[Fe/H] residuals of one model in the transfer test (all stars, or those below ``poor_below``) and their RMS."""
    t = pred[pred.model == model]
    if poor_below is not None:
        t = t[t.reference < poor_below]
    return PerStar(t.prediction.to_numpy(float) - t.reference.to_numpy(float), rms)


def _paired_rows(t1: list, t1_pred: pd.DataFrame, fe_pred: pd.DataFrame, cfg) -> list[dict]:
    """The orderings' paired ratios (every model is scored on the same test stars in the same order):
    Table 1's observed fine-tune / pre-training, and [Fe/H]'s RMSE of each ordering of Fig. 4."""
    rows = []
    for r in t1:
        if r["model"] == "finetune_real" and r["spectra"] == "observed":
            before = {**r, "model": "pretrain"}
            ratio = paired_ratio(_table1_errors(t1_pred, r), _table1_errors(t1_pred, before))
            rows.append(summary_row("spectrafm", r["label"], "Table 1 scatter on observed spectra: finetune_real / pretrain", ratio))
    present = set(fe_pred.model)
    for part, cut in (("all", None), ("fe_h_poor", cfg.fe_h_poor)):
        for a, b in (r for r in FE_RATIOS if present.issuperset(r)):
            ratio = paired_ratio(_fe_residuals(fe_pred, a, cut), _fe_residuals(fe_pred, b, cut))
            rows.append(summary_row("spectrafm", "fe_h", f"RMSE {part}: {a} / {b}", ratio))
    return rows


def _rmse(r):
    r = np.asarray(r, float)
    r = r[np.isfinite(r)]
    return float(np.sqrt(np.mean(r**2))) if r.size else float("nan")


def spectrafm(store_path, models: dict, cfg: dict, lines: pd.DataFrame):
    """All three parts; returns (metrics, tables) for metrics.json and the figures' cache. ``lines``:
    the line list attention is compared with (the store's lines.csv)."""
    store = SpectraStore(store_path)
    rows = np.flatnonzero((store.stars["split"] == "test").to_numpy())
    if rows.size == 0:
        raise ValueError(f"{store_path}: no test stars in the spectra store")
    reference = "truth" if "true_fe_h" in store.stars else "labels"
    t1, t1_pred, t1_range = table1(store, rows, models, cfg)
    fe, fe_pred, window, n_poor, n_fe_train = fe_window(store, rows, models, cfg)
    att, profiles = attention_maps(store, rows, models, cfg, lines)
    counts = {s["label"]: s.pop("per_star") for s in att}
    per_star = {label: PerStar(c, attention_enrichment) for label, c in counts.items()}
    for s in att:
        log.info(
            "attention %s: %.1f%% of the top-%d pixels within %.1f A of %s lines (%.1f%% of all pixels)",
            s["label"],
            100 * s["top_fraction_near_lines"],
            s["top_k"],
            s["tolerance_aa"],
            s["element"],
            100 * s["random_fraction_near_lines"],
        )
    for m, v in fe.items():
        log.info(
            "[Fe/H] from %.0f-%.0f A, %s: RMSE %.3f (all), %.3f ([Fe/H] < -1, %d stars)",
            *window,
            m,
            v["rmse_all"],
            v["rmse_fe_h_poor"],
            n_poor,
        )
    metrics = {
        "reference": reference,
        "n_test": int(rows.size),
        "table1": {"range_aa": t1_range, "logg_range": list(cfg.logg_range), "rows": t1},
        "fe_h_window": {"window_aa": window, "n_fe_h_poor": n_poor, "n_finetune_stars": n_fe_train, "models": fe},
        "attention": att,
        "fine_tuned_beats_fcnn_on_iron_poor": bool(fe["finetune_fe"]["rmse_fe_h_poor"] < fe["fcnn"]["rmse_fe_h_poor"]),
    }
    summary = [
        summary_row("spectrafm", r["label"], f"Table 1 scatter, {r['model']} on {r['spectra']} spectra", _table1_errors(t1_pred, r))
        for r in t1
    ]
    summary += [
        summary_row("spectrafm", "fe_h", f"RMSE {part} ({m})", _fe_residuals(fe_pred, m, cfg.fe_h_poor if part == "fe_h_poor" else None))
        for m in fe
        for part in ("all", "fe_h_poor")
    ]
    summary += _paired_rows(t1, t1_pred, fe_pred, cfg)
    summary += [
        summary_row(
            "spectrafm",
            s["label"],
            f"attention: most-attended share near {s['element']} lines / share of all pixels",
            per_star[s["label"]],
        )
        for s in att
    ]
    # Fig. 5's finding is the element's own lines: attended above the lines of the other elements
    summary += [
        summary_row(
            "spectrafm",
            s["label"],
            f"attention: most-attended rate near {s['element']} lines / near other elements' lines",
            PerStar(counts[s["label"]], attention_selectivity),
        )
        for s in att
        if s["element"] != "any"
    ]
    metrics["summary"] = summary
    tables = {"table1": t1_pred, "fe_h": fe_pred, "attention": profiles, "lines": lines}
    return metrics, tables
