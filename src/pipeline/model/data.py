"""Training data: the per-star random sampler of section 5, streamed from the Zarr token store.

For every star and every epoch: a random number k of inputs between ``min_inputs`` (5) and the
context length, drawn from the star's present tokens in random order (stars with fewer present
tokens are padded); and one target (or ``n_targets`` distinct ones) drawn from its present tokens
except the held-out outputs (bprp and jk by default), which may also be among the inputs.

The paper draws targets uniformly, so a star's three labels are asked for in only ~3% of the
draws (110 of 116 candidates are XP coefficients). ``target_weights`` raise the odds of chosen
tokens (weighted sampling without replacement, Efraimidis & Spirakis 2006), which buys the same
accuracy on the parameters with far fewer epochs; uniform weights recover the paper.

Uniform input subsets are almost all XP coefficients (110 of 118 tokens), so a star described
only by its parameters (the input of the paper's parameters-to-spectra tasks: Figs. 6, 7, 11,
13) is a case the sampler produces about never. ``label_input_fraction`` gives that share of
stars inputs drawn only from the non-XP tokens other than the held-out outputs (1 to all of
them) and, as targets, what a
spectrum at 10 pc needs: the XP coefficients and the luminosity g_fakemag (with their usual
target weights), plus any ``label_input_targets`` (mass and age for the mass/age model);
0 recovers the paper. ``stars_with`` restricts a split to the stars having at least one of
the named tokens (the giants with a mass or an age), so a fine-tune spends its epochs there.

Randomness comes from (seed, epoch, chunk), so an epoch's batches are the same however many
DataLoader workers read them, and a resumed run sees the data an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..io.readers import reading


def standardise(values, errors, median, mad_std):
    """(x - median) / MAD-std for values and error / MAD-std for errors, per token."""
    return (values - median) / mad_std, errors / mad_std


def sample_batch(
    values,
    errors,
    rng,
    context: int,
    min_inputs: int = 5,
    target_weight=None,
    n_targets: int = 1,
    identity_fraction: float = 1.0,
    spectral=None,
    label_input_fraction: float = 0.0,
    spectrum_targets=None,
):
    """Inputs and targets for each star of a (stars x vocabulary) block of standardised tokens.

    Returns numpy arrays: ids (B, context) int64, vals (B, context) float32, mask (B, context)
    bool, target_id (B, T), target (B, T), target_err (B, T), and ``ok`` (B, T), False where a
    star has fewer than T eligible targets (those slots must not enter the loss). Targets of a
    star are distinct. ``target_weight`` (vocabulary,) gives each token's relative odds of being
    a target (0: never; a boolean mask works too); None means all tokens, uniformly.
    ``spectral`` (vocabulary,) marks the tokens a label-only star may not be given (the XP
    coefficients, and the trainer adds the held-out outputs); a share ``label_input_fraction``
    of stars then gets only the other tokens as inputs (1 to all of them) and targets among
    ``spectrum_targets`` (default: the ``spectral`` tokens), drawn with ``target_weight``.
    """
    b, v = values.shape
    present = np.isfinite(values)
    w0 = np.ones(v) if target_weight is None else np.asarray(target_weight, np.float64)
    w = np.broadcast_to(w0, (b, v))
    from_labels = np.zeros(b, bool)
    if label_input_fraction > 0.0:
        if spectral is None:
            raise ValueError("label_input_fraction needs the mask of spectral tokens")
        spectral = np.asarray(spectral, bool)
        wanted = spectral if spectrum_targets is None else np.asarray(spectrum_targets, bool)
        from_labels = rng.random(b) < label_input_fraction
        w = np.where(from_labels[:, None], np.where(wanted, w0, 0.0)[None, :], w)
    eligible = present & (w > 0)
    # weighted sampling without replacement: the smallest keys -ln(U) / w win
    tkeys = np.where(eligible, -np.log1p(-rng.random((b, v))) / np.where(w > 0, w, 1.0), np.inf)
    target_id = np.argsort(tkeys, axis=1)[:, :n_targets] if n_targets > 1 else np.argmin(tkeys, axis=1)[:, None]
    ok = np.take_along_axis(eligible, target_id, axis=1)
    target = np.where(ok, np.take_along_axis(values, target_id, axis=1), 0.0)
    target_err = np.where(ok, np.nan_to_num(np.take_along_axis(errors, target_id, axis=1), nan=0.0), 1.0)
    candidates = present
    if identity_fraction < 1.0:  # withhold the targets from the inputs of most stars
        withhold = np.zeros((b, v), bool)
        np.put_along_axis(withhold, target_id, ok, axis=1)
        withhold &= (rng.random(b) >= identity_fraction)[:, None]
        candidates = present & ~withhold
    if from_labels.any():
        candidates = candidates & ~(from_labels[:, None] & spectral[None, :])
    # random order with candidate tokens first: sort random keys, +inf for the others
    keys = np.where(candidates, rng.random((b, v)), np.inf)
    order = np.argsort(keys, axis=1)[:, :context]
    n_present = candidates.sum(axis=1)
    k = rng.integers(min_inputs, context + 1, size=b)
    if from_labels.any():  # 1 to all of the star's non-spectral tokens
        k = np.where(from_labels, np.floor(rng.random(b) * np.maximum(n_present, 1)).astype(np.int64) + 1, k)
    n_in = np.minimum(k, n_present)
    mask = np.arange(min(context, v))[None, :] < n_in[:, None]
    ids = np.where(mask, order, 0)
    vals = np.where(mask, np.take_along_axis(values, order, axis=1), 0.0)
    if ids.shape[1] < context:  # a vocabulary smaller than the context: pad the remaining slots
        pad = context - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)))
        vals = np.pad(vals, ((0, 0), (0, pad)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
    return (
        ids.astype(np.int64),
        vals.astype(np.float32),
        mask,
        target_id.astype(np.int64),
        target.astype(np.float32),
        target_err.astype(np.float32),
        ok,
    )


class TokenStream(IterableDataset):
    """Batches of sampled stars of one split, read chunk by chunk from the Zarr store.

    Each epoch visits the split's chunks in a seeded random order; workers take every
    ``num_workers``-th chunk. Call ``set_epoch`` before iterating.
    """

    def __init__(
        self,
        store_path,
        split: str,
        batch_size: int,
        context: int,
        seed: int = 0,
        held_out=("bprp", "jk"),
        min_inputs: int = 5,
        shuffle: bool = True,
        target_tokens=None,
        n_targets: int = 1,
        target_weights=None,
        identity_fraction: float = 1.0,
        label_input_fraction: float = 0.0,
        stars_with=None,
        label_input_targets=(),
    ):
        from ..tokens.store import SPLIT_NAMES, open_token_store

        self.path, self.batch_size, self.context, self.seed = str(store_path), batch_size, context, seed
        self.min_inputs, self.shuffle, self.epoch, self.n_targets = min_inputs, shuffle, 0, n_targets
        self.identity_fraction, self.label_input_fraction = identity_fraction, label_input_fraction
        root = open_token_store(store_path)
        self.vocab = list(root.attrs["vocabulary"])
        self.median = np.asarray(root.attrs["median"], np.float64)
        self.mad = np.asarray(root.attrs["mad_std"], np.float64)
        self.store_hash = root.attrs.get("config_hash")
        for key, names in (
            ("held_out", held_out),
            ("target_weights", target_weights or {}),
            ("label_input_targets", label_input_targets),
            ("stars_with", stars_with or ()),
        ):
            unknown = [t for t in names if t not in self.vocab]
            if unknown:
                raise ValueError(f"train.{key} names {unknown}, which are not in the vocabulary of {store_path}")
        allowed = set(target_tokens) if target_tokens else set(self.vocab)
        weights = target_weights or {}
        self.target_weight = np.array([float(weights.get(t, 1.0)) if t in allowed and t not in held_out else 0.0 for t in self.vocab])
        spectral = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in self.vocab])
        self.spectrum_targets = spectral | np.isin(self.vocab, ["g_fakemag", *label_input_targets])
        # label-only inputs leave out the XP coefficients and the held-out outputs: bprp and jk,
        # which are never asked for, keep the meaning they have in the paper's training (Fig. 14)
        self.not_label_input = spectral | np.isin(self.vocab, list(held_out))
        split_codes = root["split"][:]
        self.split_code = SPLIT_NAMES.index(split)
        self.chunk = root["values"].chunks[0]
        n = split_codes.size
        in_split = split_codes == self.split_code
        if stars_with:  # only the stars that have at least one of these tokens (e.g. the giants with mass, age)
            cols = [self.vocab.index(t) for t in stars_with]
            in_split &= np.isfinite(root["values"].oindex[:, cols]).any(axis=1)
        # chunks holding at least one star of this split, with the rows of the split in each
        self.chunks = [(s, np.nonzero(in_split[s : s + self.chunk])[0] + s) for s in range(0, n, self.chunk)]
        self.chunks = [(s, rows) for s, rows in self.chunks if rows.size]
        self.n_stars = int(sum(rows.size for _, rows in self.chunks))
        self._root = None

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):  # batches per epoch (each chunk's last batch may be short)
        return int(sum(-(-rows.size // self.batch_size) for _, rows in self.chunks))

    def _arrays(self):
        if self._root is None:  # opened lazily in each worker process
            from ..tokens.store import open_token_store

            self._root = open_token_store(self.path)
        return self._root["values"], self._root["errors"]

    def __iter__(self):
        values_z, errors_z = self._arrays()
        order = np.arange(len(self.chunks))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        info = get_worker_info()
        if info is not None:
            order = order[info.id :: info.num_workers]
        for c in order:
            start, rows = self.chunks[c]
            rng = np.random.default_rng([self.seed, self.epoch, int(c)])
            local = rows - start
            with reading(self.path, "a Zarr token store (a chunk of values or errors)"):
                vals = values_z[start : start + self.chunk][local].astype(np.float64)
                errs = errors_z[start : start + self.chunk][local].astype(np.float64)
            vals, errs = standardise(vals, errs, self.median, self.mad)
            if self.shuffle:
                perm = rng.permutation(len(rows))
                vals, errs = vals[perm], errs[perm]
            for i in range(0, len(rows), self.batch_size):
                batch = sample_batch(
                    vals[i : i + self.batch_size],
                    errs[i : i + self.batch_size],
                    rng,
                    self.context,
                    self.min_inputs,
                    self.target_weight,
                    self.n_targets,
                    self.identity_fraction,
                    self.not_label_input,
                    self.label_input_fraction,
                    self.spectrum_targets,
                )
                yield tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in batch)
