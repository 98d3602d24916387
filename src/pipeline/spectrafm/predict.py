"""Reading a trained SpectraFM stage: its checkpoint, predictions over spectra of any length (by
chunks of the model's context, averaged), and where its decoder looks (attention against lines)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import torch_save
from .model import FCNN, FCNNConfig, SpectraFM, SpectraFMConfig, pixel_tokens


def save_checkpoint(path, model, cfg, median, scale, stage: dict):
    kind = "fcnn" if isinstance(model, FCNN) else "spectrafm"
    torch_save(
        {
            "format": f"{kind}/1",
            "config": cfg.to_dict(),
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "median": [float(x) for x in median],
            "scale": [float(x) for x in scale],
            "stage": stage,
        },
        path,
    )


def load_checkpoint(model_dir) -> dict:
    path = Path(model_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no SpectraFM model here; run its spectrafm_train rule first")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    kind = ckpt.get("format", "").split("/")[0]
    cfg = FCNNConfig.from_dict(ckpt["config"]) if kind == "fcnn" else SpectraFMConfig.from_dict(ckpt["config"])
    return {**ckpt, "kind": kind, "config": cfg, "median": np.asarray(ckpt["median"]), "scale": np.asarray(ckpt["scale"])}


def load_model(model_dir, device="cpu"):
    """(model in eval mode, checkpoint dict) of a stage's folder."""
    ckpt = load_checkpoint(model_dir)
    model = FCNN(ckpt["config"]) if ckpt["kind"] == "fcnn" else SpectraFM(ckpt["config"])
    model.load_state_dict(ckpt["state"])
    return model.to(device).eval(), ckpt


# -- prediction ------------------------------------------------------------------------------------
def chunk_starts(n_pixels: int, context: int) -> np.ndarray:
    """Starts of consecutive chunks of ``context`` pixels covering n_pixels; the last ends at the last pixel."""
    if n_pixels <= context:
        return np.array([0])
    starts = np.arange(0, n_pixels - context + 1, context)
    return starts if starts[-1] + context == n_pixels else np.append(starts, n_pixels - context)


def chunk_batches(flux, wavelength_aa, context: int, batch_size: int, device):
    """The spectra (stars x pixels) cut into consecutive chunks of ``context`` pixels, in batches of
    whole stars: yields (first star, pixel columns of each item (items x width), the items' pixel
    tokens ids/values/mask and wavelengths); a star's chunks are consecutive items."""
    n, p = flux.shape
    starts = chunk_starts(p, context)
    cols = starts[:, None] + np.arange(min(context, p))  # (chunks, width)
    lam = np.asarray(wavelength_aa, np.float32)[cols]
    per_batch = max(1, batch_size // starts.size)
    for i in range(0, n, per_batch):
        k = min(per_batch, n - i)
        item_cols = np.tile(cols, (k, 1))
        f = torch.from_numpy(flux[i : i + k][:, cols].reshape(item_cols.shape)).to(device)
        w = torch.from_numpy(np.tile(lam, (k, 1))).to(device)
        yield (i, item_cols, *pixel_tokens(f), w)


@torch.no_grad()
def predict(model_dir, flux, wavelength_aa, labels=None, batch_size: int = 256, device="cpu"):
    """Labels of spectra (stars x pixels on ``wavelength_aa``) in physical units: {label: (mean, sigma)}.

    SpectraFM reads chunks of its context and averages their means (and their predicted
    variances); the FCNN reads its fixed window (the flux must have exactly its n_pixels)."""
    model, ckpt = load_model(model_dir, device)
    cfg, med, sc = ckpt["config"], ckpt["median"], ckpt["scale"]
    labels = list(labels or cfg.labels)
    flux = np.asarray(flux, np.float32)
    n, p = flux.shape
    if ckpt["kind"] == "fcnn":
        if p != cfg.n_pixels:
            raise ValueError(f"{model_dir}: the FCNN reads {cfg.n_pixels} pixels; got {p}")
        outs = [model(torch.from_numpy(flux[i : i + batch_size]).to(device)) for i in range(0, n, batch_size)]
        mean = torch.cat([o[0] for o in outs]).cpu().numpy()
        var = torch.cat([o[1] for o in outs]).exp().cpu().numpy()
        idx = [list(cfg.labels).index(t) for t in labels]
        return {t: (mean[:, j] * sc[j] + med[j], np.sqrt(var[:, j]) * sc[j]) for t, j in zip(labels, idx)}
    idx = [cfg.labels.index(t) for t in labels]
    tid = torch.tensor([[1 + j for j in idx]], device=device)
    n_chunks = chunk_starts(p, cfg.context).size
    means = np.full((n, n_chunks, len(idx)), np.nan)
    varis = np.full_like(means, np.nan)
    for i, _, ids, values, mask, w in chunk_batches(flux, wavelength_aa, cfg.context, batch_size, device):
        m, lv, _ = model(ids, values, mask, tid.expand(ids.shape[0], -1), w)
        empty = ~mask.any(1)
        m[empty], lv[empty] = float("nan"), float("nan")
        k = ids.shape[0] // n_chunks
        means[i : i + k] = m.float().cpu().numpy().reshape(k, n_chunks, len(idx))
        varis[i : i + k] = lv.float().exp().cpu().numpy().reshape(k, n_chunks, len(idx))
    with warnings.catch_warnings():  # a star without a valid pixel in any chunk stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var = np.nanmean(means, axis=1), np.nanmean(varis, axis=1)
    return {t: (mean[:, k] * sc[j] + med[j], np.sqrt(var[:, k]) * sc[j]) for k, (t, j) in enumerate(zip(labels, idx))}


# -- attention -------------------------------------------------------------------------------------
LINE_ELEMENT = {"fe_h": "Fe", "mg_fe": "Mg", "o_fe": "O", "logg": "H", "teff": None}  # None: any line


def near_lines(wavelength_aa, element, lines, tolerance_aa: float = 1.0) -> np.ndarray:
    """True where a wavelength lies within ``tolerance_aa`` of a line of ``element`` (None: of any
    element) of ``lines`` (element, wavelength_aa: the store's lines.csv)."""
    w = lines["wavelength_aa"].to_numpy() if element is None else lines.loc[lines.element == element, "wavelength_aa"].to_numpy()
    lam = np.asarray(wavelength_aa, float)
    return (np.abs(lam[..., None] - w).min(-1) <= tolerance_aa) if w.size else np.zeros(lam.shape, bool)


@torch.no_grad()
def attention(
    model_dir, flux, wavelength_aa, labels, lines, top_k: int = 5, tolerance_aa: float = 1.0, batch_size: int = 128, device="cpu"
):
    """Where the decoder looks when asked for each of ``labels``: the cross-attention from the
    request to the pixels, averaged over the decoder blocks and heads, in chunks of the model's
    context. Every label is one request of the same pass (the decoder does not mix requests), so
    the encoder runs once per chunk whatever the number of labels.

    Returns [(summary, profile)] in the order of ``labels``: the fraction of each chunk's ``top_k``
    most-attended pixels lying within ``tolerance_aa`` of a line of the label's element
    (LINE_ELEMENT), the same fraction for all valid pixels (what random pixels would give), the
    same two counts for the lines of the other elements (pixels near another element's line and
    none of the label's), and the mean relative attention per pixel (1 = uniform) over stars."""
    labels = list(labels)
    model, ckpt = load_model(model_dir, device)
    cfg = ckpt["config"]
    flux = np.asarray(flux, np.float32)
    p = flux.shape[1]
    lam = np.asarray(wavelength_aa, np.float32)
    tid = torch.tensor([[1 + cfg.labels.index(label) for label in labels]], device=device)
    near = [near_lines(lam, LINE_ELEMENT.get(label), lines, tolerance_aa) for label in labels]
    any_line = near_lines(lam, None, lines, tolerance_aa)
    other = [any_line & ~own if LINE_ELEMENT.get(label) else np.zeros_like(own) for label, own in zip(labels, near)]
    r, n = len(labels), flux.shape[0]
    n_chunks = chunk_starts(p, cfg.context).size
    hits, picks, valid_near = np.zeros((n, r), np.int64), np.zeros((n, r), np.int64), np.zeros((n, r), np.int64)
    hits_other, valid_other = np.zeros((n, r), np.int64), np.zeros((n, r), np.int64)
    valid = np.zeros(n, np.int64)
    profile, counts = np.zeros((r, p)), np.zeros(p)
    k = min(top_k, cfg.context, p)
    for first, c, ids, values, mask, w in chunk_batches(flux, lam, cfg.context, batch_size, device):
        _, _, att = model(ids, values, mask, tid.expand(ids.shape[0], -1), w, need_weights=True)
        m = mask.cpu().numpy()
        star = first + np.arange(len(m)) // n_chunks  # items are each star's chunks in turn
        np.add.at(valid, star, m.sum(1))
        np.add.at(counts, c[m], 1)
        for j in range(r):
            a = att[:, j].float().mean(1).cpu().numpy()  # (items, width): mean over decoder blocks
            top = np.argsort(-np.where(m, a, -1), axis=1)[:, :k]
            ok = np.take_along_axis(m, top, 1)
            np.add.at(hits[:, j], star, (near[j][np.take_along_axis(c, top, 1)] & ok).sum(1))
            np.add.at(picks[:, j], star, ok.sum(1))
            np.add.at(valid_near[:, j], star, (near[j][c] & m).sum(1))
            np.add.at(hits_other[:, j], star, (other[j][np.take_along_axis(c, top, 1)] & ok).sum(1))
            np.add.at(valid_other[:, j], star, (other[j][c] & m).sum(1))
            rel = a * m.sum(1, keepdims=True)  # 1 = uniform over the chunk's valid pixels
            np.add.at(profile[j], c[m], rel[m])
    out = []
    for j, label in enumerate(labels):
        per_star = np.stack([hits[:, j], picks[:, j], valid_near[:, j], valid, hits_other[:, j], valid_other[:, j]], axis=1)
        summary = {
            "label": label,
            "element": LINE_ELEMENT.get(label) or "any",
            "top_k": k,
            "tolerance_aa": tolerance_aa,
            "top_fraction_near_lines": int(hits[:, j].sum()) / max(int(picks[:, j].sum()), 1),
            "random_fraction_near_lines": int(valid_near[:, j].sum()) / max(int(valid.sum()), 1),
            "per_star": per_star,  # (stars, 6): hits, picks, valid pixels near lines, valid pixels, and hits and
            # valid pixels near the other elements' lines
        }
        summary["enrichment"] = attention_enrichment(per_star)
        summary["selectivity"] = attention_selectivity(per_star)
        with np.errstate(invalid="ignore"):
            out.append((summary, profile[j] / counts))
    return out


def attention_enrichment(per_star) -> float:
    """The share of the most-attended pixels near lines over the share of all valid pixels near
    lines, from per-star counts (stars, 4+: hits, picks, valid near lines, valid); 1: attention blind to lines."""
    h, k, vn, v = np.asarray(per_star, float)[:, :4].sum(axis=0)
    return float((h / max(k, 1.0)) / max(vn / max(v, 1.0), 1e-12))


def attention_selectivity(per_star) -> float:
    """How much more often a pixel near the requested element's lines is among the most attended
    than a pixel near another element's lines: (hits / valid near own lines) / (other hits / valid
    near other lines), from per-star counts (stars, 6; attention.per_star). 1: attention that finds
    lines but not the element's; NaN when the label names no element (Teff) or no such pixels."""
    c = np.asarray(per_star, float).sum(axis=0)
    h, vn, ho, vo = c[0], c[2], c[4], c[5]
    if vn <= 0 or vo <= 0:
        return float("nan")
    if ho <= 0:
        return float("inf") if h > 0 else float("nan")
    return float((h / vn) / (ho / vo))
