"""Inference: give a star any of its observations, ask for any others, get values and 1-sigma errors.

    model = StellarModel.load("results/models/small")
    stars = model.perceive(table)                 # encode once ...
    out = model.request(stars, ["teff", "logg"])  # ... answer many requests
    out = model.predict(table, ["teff", "logg", "m_h"])  # both in one call

``table`` is a DataFrame (or a dict of arrays) whose columns are token names (physical units,
NaN = not observed) and optionally ``<token>_err``. More present tokens than the model's context
and unknown column names are errors. Returned uncertainties are the model's predictive sigma;
with ``n_mc > 0`` and input errors given, the inputs are also resampled from their errors and
the spread of the answers is added in quadrature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..engine import autocast, device_and_precision
from .model import ModelConfig, StellarTransformer


@dataclass
class Perception:
    """Encoded stars: the encoder ran once; any number of requests can follow."""

    memory: torch.Tensor
    mask: torch.Tensor
    tokens: list  # per star, the names of the tokens it was given, in encoder order
    index: pd.Index


class StellarModel:
    """``precision``: ``auto`` answers in bf16 autocast on CUDA and in float32 on the CPU;
    ``bfloat16`` or ``float32`` ask for one (see engine.device_and_precision)."""

    def __init__(self, net: StellarTransformer, meta: dict, device="cpu", precision: str = "auto"):
        self.net = net.eval().to(device)
        self.meta = meta
        self.device = torch.device(device)
        self.amp_dtype = device_and_precision(str(self.device.type), precision)[1]
        self.vocab = list(meta["vocabulary"])
        self.token_index = {t: i for i, t in enumerate(self.vocab)}
        self.median = np.asarray(meta["median"], np.float64)
        self.mad = np.asarray(meta["mad_std"], np.float64)
        self.context = int(meta["model"]["context"])

    @classmethod
    def load(cls, model_dir, device: str | None = None, precision: str = "auto"):
        from .hub import has_weights, load_state

        d = Path(model_dir)
        if not (d / "config.json").exists() or not has_weights(d):
            raise FileNotFoundError(
                f"{d}: not a model folder (needs config.json and model.pt from the train rule, or model.safetensors from an export)"
            )
        meta = json.loads((d / "config.json").read_text())
        net = StellarTransformer(ModelConfig.from_dict(meta["model"]))
        net.load_state_dict(load_state(d))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(net, meta, device, precision)

    # -- inputs ------------------------------------------------------------------------------
    def _check_columns(self, columns):
        names = [c for c in columns if not str(c).endswith("_err")]
        unknown = [c for c in names if c not in self.token_index]
        if unknown:
            raise ValueError(f"unknown token name(s) {unknown}; the model knows {len(self.vocab)} tokens, e.g. {self.vocab[-8:]}")
        errs = [c for c in columns if str(c).endswith("_err") and c[:-4] not in names]
        if errs:
            raise ValueError(f"error column(s) {errs} without their value column")
        return names

    def _standardised(self, table: pd.DataFrame, names):
        idx = np.array([self.token_index[n] for n in names], dtype=np.int64)
        vals = table[names].to_numpy(np.float64) if names else np.zeros((len(table), 0))
        std = (vals - self.median[idx]) / self.mad[idx]
        present = np.isfinite(std)
        too_many = present.sum(axis=1) > self.context
        if too_many.any():
            rows = table.index[too_many][:5].tolist()
            raise ValueError(
                f"{int(too_many.sum())} star(s) (e.g. rows {rows}) give more than the model's context of "
                f"{self.context} tokens; pass at most {self.context} observations per star"
            )
        none = ~present.any(axis=1)
        if none.any():
            raise ValueError(f"{int(none.sum())} star(s) (e.g. rows {table.index[none][:5].tolist()}) have no observation at all")
        return idx, std, present

    def _inputs(self, idx, std, present):
        """The encoder's tensors (ids, values, mask) for standardised tokens, present ones first."""
        order = np.argsort(~present, axis=1, kind="stable")[:, : self.context]
        n = min(self.context, std.shape[1])
        mask = np.take_along_axis(present, order, axis=1)[:, :n]
        ids = np.where(mask, idx[order[:, :n]], 0)
        vals = np.where(mask, np.take_along_axis(std, order, axis=1)[:, :n], 0.0)
        t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=self.device)  # noqa: E731
        return t(ids, torch.long), t(vals, torch.float32), t(mask, torch.bool), order[:, :n], mask

    def inputs(self, table: pd.DataFrame):
        """(ids, values, mask) tensors of a table whose columns are token names (NaN = not given)."""
        table = pd.DataFrame(table)
        names = self._check_columns(table.columns)
        return self._inputs(*self._standardised(table, names))[:3]

    def _encode_block(self, idx, std, present):
        ids_t, vals_t, mask_t, order, mask = self._inputs(idx, std, present)
        with autocast(self.device, self.amp_dtype):
            return self.net.encode(ids_t, vals_t, mask_t), mask_t, order, mask

    @torch.no_grad()
    def perceive(self, table, batch_size: int = 4096) -> Perception:
        """Encode stars (all at once; for very many stars use ``predict``, which batches)."""
        table = pd.DataFrame(table)
        names = self._check_columns(table.columns)
        idx, std, present = self._standardised(table, names)
        memory, mask, order, m = self._encode_block(idx, std, present)
        tokens = [[names[j] for j, ok in zip(o, mm) if ok] for o, mm in zip(order, m)]
        return Perception(memory, mask, tokens, table.index)

    @torch.no_grad()
    def request(self, perception: Perception, tokens, return_attention: bool = False):
        """Values and 1-sigma uncertainties (physical units) of the requested tokens for encoded stars."""
        tokens = list(tokens)
        self._check_columns(tokens)
        rid = torch.as_tensor([self.token_index[t] for t in tokens], device=self.device)
        rid = rid[None, :].expand(perception.memory.shape[0], -1)
        with autocast(self.device, self.amp_dtype):
            mean, logvar, attn = self.net.decode(perception.memory, perception.mask, rid, need_weights=return_attention)
        j = np.array([self.token_index[t] for t in tokens])
        mu = mean.float().cpu().numpy() * self.mad[j] + self.median[j]
        sigma = np.exp(0.5 * logvar.float().cpu().numpy()) * self.mad[j]
        cols = {}
        for k, t in enumerate(tokens):
            cols[t], cols[f"{t}_err"] = mu[:, k], sigma[:, k]
        out = pd.DataFrame(cols, index=perception.index)
        if return_attention:
            return out, attn.float().cpu().numpy()
        return out

    def predict(self, table, tokens, batch_size: int = 2048, n_mc: int = 0, seed: int = 0, return_attention: bool = False):
        """``perceive`` then ``request`` in batches of stars; optional Monte Carlo over input errors."""
        table = pd.DataFrame(table)
        names = self._check_columns(table.columns)
        parts, attns = [], []
        rng = np.random.default_rng(seed)
        for start in range(0, len(table), batch_size):
            chunk = table.iloc[start : start + batch_size]
            res = self.request(self.perceive(chunk[names]), tokens, return_attention)
            out, attn = res if return_attention else (res, None)
            errs = [n for n in names if f"{n}_err" in chunk.columns]
            if n_mc > 0 and errs:
                draws = []
                for _ in range(n_mc):
                    noisy = chunk[names].copy()
                    for n in errs:
                        noisy[n] = noisy[n] + np.nan_to_num(chunk[f"{n}_err"].to_numpy()) * rng.standard_normal(len(chunk))
                    draws.append(self.request(self.perceive(noisy), tokens)[list(tokens)].to_numpy())
                spread = np.std(np.stack(draws), axis=0)
                for k, t in enumerate(tokens):
                    out[f"{t}_err"] = np.hypot(out[f"{t}_err"].to_numpy(), spread[:, k])
            parts.append(out)
            if attn is not None:
                attns.append(attn)
        result = pd.concat(parts)
        return (result, np.concatenate(attns)) if return_attention else result
