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
stars inputs drawn only from the non-XP tokens (1 to all of them), the held-out outputs among
them only with ``label_inputs_held_out`` (true: for all of those stars; a number: for that share
of them) and, as targets, what a
spectrum at 10 pc needs: the XP coefficients and the luminosity g_fakemag (with their usual
target weights), plus any ``label_input_targets`` (mass and age for the mass/age model);
0 recovers the paper. ``stars_with`` restricts a split to the stars having at least one of
the named tokens (the giants with a mass or an age), so a fine-tune spends its epochs there.

Randomness comes from (seed, epoch, pool), so an epoch's batches are the same however many
DataLoader workers read them, and a resumed run sees the data an uninterrupted one would (on a
given device: CUDA's generator draws other numbers than the CPU's).

The split is held on the training device and sampled there with torch (``TokenSampler``), in
pools of a few batches, each batch cut to its longest row; ``length_groups`` keeps the encoder on
real tokens rather than padding by running one batch as groups of similar input counts (the same
stars and gradient: the default on the CPU). Batching a pool's stars by their input counts
(the retired ``train.bucket``) was faster per step but taught less per epoch: each step saw only
short or only long inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..io.readers import reading
from .settings import Sampling


def standardise(values, errors, median, mad_std):
    """(x - median) / MAD-std for values and error / MAD-std for errors, per token."""
    return (values - median) / mad_std, errors / mad_std


def sample_batch(
    values,
    errors,
    generator,
    context: int,
    min_inputs: int = 5,
    target_weight=None,
    n_targets: int = 1,
    identity_fraction: float = 1.0,
    spectral=None,
    label_input_fraction: float = 0.0,
    spectrum_targets=None,
    held_out_inputs=None,
    held_out_input_fraction: float = 0.0,
):
    """Inputs and targets for each star of a (stars x vocabulary) block of standardised tokens,
    drawn with torch on the block's device from ``generator`` (a ``torch.Generator`` there).

    ``values``, ``errors``: (B, V) float tensors, NaN where a token is absent. Returns tensors:
    ids (B, L) int64, vals (B, L) float32, mask (B, L) bool with the inputs first in each row
    (L = min(context, V): cut a batch to its longest row with ``trim``), target_id (B, T),
    target (B, T), target_err (B, T) and ``ok`` (B, T), False where a star has fewer than T
    eligible targets (those slots must not enter the loss). Targets of a star are distinct.
    ``target_weight`` (V,) gives each token's relative odds of being a target (0: never; a
    boolean mask works too); None means all tokens, uniformly. ``spectral`` (V,) marks the
    tokens a label-only star may not be given (the XP coefficients, and the trainer adds the
    held-out outputs); a share ``label_input_fraction`` of stars then gets only the other tokens
    as inputs (1 to all of them) and targets among ``spectrum_targets`` (default: the
    ``spectral`` tokens), drawn with ``target_weight``. ``held_out_inputs`` (V,) marks tokens among
    the ``spectral`` ones that a share ``held_out_input_fraction`` of the label-only stars may be given
    after all (bprp and jk; ``train.label_inputs_held_out`` as a number). No step reads a value back
    to the host.
    """
    dev = values.device
    b, v = values.shape
    rand = lambda *shape: torch.rand(shape, generator=generator, device=dev)  # noqa: E731
    as_mask = lambda m: torch.as_tensor(m, dtype=torch.bool, device=dev)  # noqa: E731 - no copy when already there
    present = torch.isfinite(values)
    w0 = torch.ones(v, device=dev) if target_weight is None else torch.as_tensor(target_weight, dtype=torch.float32, device=dev)
    w = w0.expand(b, v)
    from_labels = torch.zeros(b, dtype=torch.bool, device=dev)
    if label_input_fraction > 0.0:
        if spectral is None:
            raise ValueError("label_input_fraction needs the mask of spectral tokens")
        spectral = as_mask(spectral)
        wanted = spectral if spectrum_targets is None else as_mask(spectrum_targets)
        from_labels = rand(b) < label_input_fraction
        w = torch.where(from_labels[:, None], (w0 * wanted)[None, :], w)
    eligible = present & (w > 0)
    # weighted sampling without replacement: the smallest keys -ln(U) / w win
    tkeys = torch.where(eligible, -torch.log1p(-rand(b, v)) / torch.where(w > 0, w, 1.0), torch.inf)
    target_id = torch.topk(tkeys, n_targets, dim=1, largest=False, sorted=True).indices
    ok = eligible.gather(1, target_id)
    target = torch.where(ok, values.gather(1, target_id), 0.0)
    target_err = torch.where(ok, torch.nan_to_num(errors.gather(1, target_id), nan=0.0), 1.0)
    candidates = present
    if identity_fraction < 1.0:  # withhold the targets from the inputs of most stars
        withhold = torch.zeros_like(present).scatter(1, target_id, ok)
        candidates = present & ~(withhold & (rand(b) >= identity_fraction)[:, None])
    if label_input_fraction > 0.0:
        withheld = spectral[None, :]  # (1 or B, V): what each label-only star may not be given
        if held_out_inputs is not None and 0.0 < held_out_input_fraction < 1.0:
            given = rand(b) < held_out_input_fraction  # the label-only stars that may have them
            withheld = withheld & ~(given[:, None] & as_mask(held_out_inputs)[None, :])
        candidates = candidates & ~(from_labels[:, None] & withheld)
    # random order with candidate tokens first: sort random keys, +inf for the others
    n = min(context, v)
    order = torch.topk(torch.where(candidates, rand(b, v), torch.inf), n, dim=1, largest=False, sorted=True).indices
    n_present = candidates.sum(1)
    k = torch.randint(min_inputs, context + 1, (b,), generator=generator, device=dev)
    if label_input_fraction > 0.0:  # 1 to all of the star's non-spectral tokens
        k = torch.where(from_labels, (rand(b) * n_present.clamp(min=1)).long() + 1, k)
    n_in = torch.minimum(k, n_present)
    mask = torch.arange(n, device=dev)[None, :] < n_in[:, None]
    ids = torch.where(mask, order, 0)
    vals = torch.where(mask, values.gather(1, order), 0.0).float()
    return ids, vals, mask, target_id, target.float(), target_err.float(), ok


def trim(batch, length: int):
    """A batch cut to its first ``length`` input slots (the longest row: the rest is padding)."""
    ids, vals, mask, *targets = batch
    return (ids[:, :length], vals[:, :length], mask[:, :length], *targets)


def seed_of(*keys) -> int:
    """One 63-bit seed for a torch.Generator from several integers (seed, epoch, pool)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def trimmed_batches(sample, batch_size: int, multiple: int = 1):
    """The batches of one pool of sampled stars, in the pool's (random) order: ``batch_size``
    consecutive stars each, trimmed to its longest row (rounded up to a ``multiple``: on CUDA 8, so
    that a compiled model sees few shapes and tensor cores aligned ones). One read back to the
    host per pool (the batches' lengths)."""
    n_in = sample[2].sum(1)
    starts = list(range(0, n_in.shape[0], batch_size))
    longest = torch.stack([n_in[s : s + batch_size].max() for s in starts]).clamp(min=1)
    lengths = (-(-longest // multiple) * multiple).clamp(max=sample[0].shape[1]).tolist()
    for s, length in zip(starts, lengths):
        yield trim(tuple(a[s : s + batch_size] for a in sample), length)


def length_groups(batch, groups: int, multiple: int = 1):
    """One batch as ``groups`` groups of stars with similar input counts, each cut to its longest
    row (rounded up to a ``multiple``): the network runs on each in turn and the losses add up to
    the whole batch's, so the gradient is the batch's own (the same stars, the same step) while
    the encoder works on real tokens, not on padding. One read back to the host per batch (the
    groups' lengths); ``groups`` 1 returns the batch as it is."""
    if groups <= 1 or batch[0].shape[0] < 2:
        return [batch]
    n_in, by_length = torch.sort(batch[2].sum(1), stable=True)
    groups = min(groups, n_in.shape[0])
    ends = [(j + 1) * n_in.shape[0] // groups for j in range(groups)]  # near-equal groups, sorted by length
    longest = n_in[torch.tensor(ends, device=n_in.device) - 1].clamp(min=1)
    lengths = (-(-longest // multiple) * multiple).clamp(max=batch[0].shape[1]).tolist()
    batch = tuple(a[by_length] for a in batch)
    starts = [0, *ends[:-1]]
    return [trim(tuple(a[s:e] for a in batch), n) for s, e, n in zip(starts, ends, lengths)]


def memory_limit_bytes(device) -> int:
    """How much of the device a split may take to be held there (``resident: auto``): a quarter
    of the GPU's free memory, or of the machine's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0] * 0.25)
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.25)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2 << 30


class TokenSampler(IterableDataset):
    """Batches of sampled stars of one split of the token store.

    ``resident``: ``memory`` holds the split's standardised values and errors on ``device`` (GPU
    memory or RAM: the paper's 400k stars x 118 tokens x 2 are 0.4 GB) and samples there with
    torch, so a step never waits on the host; ``stream`` reads the store chunk by chunk (stores
    larger than memory; DataLoader workers may read in parallel); ``auto`` holds it when it takes
    less than ``memory_limit_bytes``. Either way the stars of an epoch come in a random order
    (seeded by (seed, epoch)), are sampled by pools of ``pool_batches`` batches (a chunk, when
    streaming), each batch cut to its longest row. Call ``set_epoch`` before iterating.
    ``sampling``: what it draws (``TrainConfig.sampling()``); ``context``: the model's; ``device``:
    where it holds the split and samples.
    """

    def __init__(self, store_path, split: str, sampling: Sampling, context: int, device="cpu"):
        from ..tokens.store import SPLIT_NAMES, open_token_store

        s = sampling
        self.path, self.batch_size, self.context, self.seed = str(store_path), s.batch_size, context, s.seed
        self.min_inputs, self.shuffle, self.epoch, self.n_targets = s.min_inputs, s.shuffle, 0, s.targets_per_star
        self.identity_fraction, self.label_input_fraction = s.identity_fraction, s.label_input_fraction
        self.pool_batches = max(int(s.pool_batches), 1)
        held_out, target_weights, label_input_targets, stars_with = s.held_out, s.target_weights, s.label_input_targets, s.stars_with
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
        weights = target_weights or {}
        self.target_weight = np.array([float(weights.get(t, 1.0)) if t not in held_out else 0.0 for t in self.vocab])
        spectral = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in self.vocab])
        self.spectrum_targets = spectral | np.isin(self.vocab, ["g_fakemag", *label_input_targets])
        # label-only inputs leave out the XP coefficients and (unless ``label_inputs_held_out``) the
        # held-out outputs: bprp and jk, which are never asked for, keep the meaning they have in the
        # paper's training (Fig. 14), at the price of never seeing parameters + colours without XP (task h)
        # (a number: that share of the label-only stars may be given them, the others not)
        share = s.label_inputs_held_out
        if not isinstance(share, (bool, int, float)) or not 0.0 <= share <= 1.0:
            raise ValueError(f"train.label_inputs_held_out: {s.label_inputs_held_out!r} is not true, false or a share in [0, 1]")
        self.held_out_input_fraction = share = float(share)
        self.held_out_inputs = np.isin(self.vocab, list(held_out))
        self.not_label_input = spectral | (self.held_out_inputs if share < 1.0 else np.zeros(len(self.vocab), bool))
        self.device = torch.device(device)
        # the sampler's token masks and weights on the device once (not copied there every batch)
        self._weights = {
            name: torch.as_tensor(getattr(self, name), dtype=dtype, device=self.device)
            for name, dtype in (
                ("target_weight", torch.float32),
                ("not_label_input", torch.bool),
                ("spectrum_targets", torch.bool),
                ("held_out_inputs", torch.bool),
            )
        }
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
        resident = s.resident
        if resident not in ("auto", "memory", "stream"):
            raise ValueError(f"train.resident: {resident!r} is not one of auto, memory, stream")
        if resident == "auto":
            resident = "memory" if self.n_stars * len(self.vocab) * 8 < memory_limit_bytes(self.device) else "stream"
        self.resident = resident
        self._root, self._held = None, None
        if resident == "memory":
            self._held = self._read_split()

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):  # batches per epoch (each pool's, or chunk's, last batch may be short)
        if self.resident == "memory":
            pool = self.pool_batches * self.batch_size
            full, rest = divmod(self.n_stars, pool)
            return full * self.pool_batches + -(-rest // self.batch_size)
        return int(sum(-(-rows.size // self.batch_size) for _, rows in self.chunks))

    def _arrays(self):
        if self._root is None:  # opened lazily in each worker process
            from ..tokens.store import open_token_store

            self._root = open_token_store(self.path)
        return self._root["values"], self._root["errors"]

    def _read_chunk(self, start, rows):
        """One chunk's rows of the split, standardised, as float32 tensors on the device."""
        values_z, errors_z = self._arrays()
        local = rows - start
        with reading(self.path, "a Zarr token store (a chunk of values or errors)"):
            vals = values_z[start : start + self.chunk][local].astype(np.float64)
            errs = errors_z[start : start + self.chunk][local].astype(np.float64)
        vals, errs = standardise(vals, errs, self.median, self.mad)
        to = lambda a: torch.from_numpy(a.astype(np.float32)).to(self.device)  # noqa: E731
        return to(vals), to(errs)

    def _read_split(self):
        parts = [self._read_chunk(start, rows) for start, rows in self.chunks]
        if not parts:
            empty = torch.empty((0, len(self.vocab)), device=self.device)
            return empty, empty
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _generator(self, *keys):
        return torch.Generator(device=self.device).manual_seed(seed_of(self.seed, self.epoch, *keys))

    def _pool_batches(self, vals, errs, generator):
        batch = sample_batch(
            vals,
            errs,
            generator,
            self.context,
            self.min_inputs,
            self._weights["target_weight"],
            self.n_targets,
            self.identity_fraction,
            self._weights["not_label_input"],
            self.label_input_fraction,
            self._weights["spectrum_targets"],
            self._weights["held_out_inputs"],
            self.held_out_input_fraction,
        )
        yield from trimmed_batches(batch, self.batch_size, 8 if self.device.type == "cuda" else 1)

    def __iter__(self):
        if self.resident == "memory":
            values, errors = self._held
            gen = self._generator()  # (seed, epoch): the order; (seed, epoch, pool): the draws
            order = torch.randperm(self.n_stars, generator=gen, device=self.device) if self.shuffle else None
            pool = self.pool_batches * self.batch_size
            info = get_worker_info()  # DataLoader workers (not needed here) take every n-th pool
            for p, s in enumerate(range(0, self.n_stars, pool)):
                if info is not None and p % info.num_workers != info.id:
                    continue
                rows = order[s : s + pool] if order is not None else slice(s, s + pool)
                yield from self._pool_batches(values[rows], errors[rows], self._generator(p))
            return
        order = np.arange(len(self.chunks))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        info = get_worker_info()
        if info is not None:
            order = order[info.id :: info.num_workers]
        for c in order:
            vals, errs = self._read_chunk(*self.chunks[c])
            gen = self._generator(int(c))
            if self.shuffle:
                perm = torch.randperm(vals.shape[0], generator=gen, device=self.device)
                vals, errs = vals[perm], errs[perm]
            yield from self._pool_batches(vals, errs, gen)
