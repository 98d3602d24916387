"""The NumPy sampler the pipeline trained with before the device-resident one (issue 19), kept
as the reference its statistics are compared with (tests/test_sampler.py). Not used by the pipeline."""

import numpy as np


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
