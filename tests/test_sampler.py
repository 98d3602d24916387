"""The device-resident sampler (model/data.py): the same statistics as the NumPy sampler it
replaced (tests/reference_sampler.py), batches of similar lengths cut to their longest row, every
star once per epoch, and draws that depend on (seed, epoch) alone."""

import numpy as np
import pytest
import torch

from pipeline.model.data import TokenSampler, sample_batch, trimmed_batches
from pipeline.model.settings import TrainConfig
from pipeline.tokens.vocab import BASE_VOCABULARY
from reference_sampler import sample_batch as reference_sample_batch
from test_model import _tiny_store

SPECTRAL = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in BASE_VOCABULARY])


def _stars(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(BASE_VOCABULARY)))
    values[rng.random(values.shape) < 0.3] = np.nan  # stars with 40 to 118 present tokens
    values[: n // 3, 30:60] = np.nan
    return values, np.abs(values) * 0.1 + 0.01


def _statistics(ids, mask, tid, ok):
    """Input counts, target frequencies per token, and how often a target is also an input."""
    v = len(BASE_VOCABULARY)
    given = np.zeros((len(ids), v), bool)
    given[np.nonzero(mask)[0], ids[mask]] = True
    return (
        np.bincount(mask.sum(1), minlength=65) / len(ids),
        np.bincount(tid[ok], minlength=v) / ok.sum(),
        np.take_along_axis(given, tid, axis=1)[ok].mean(),
        (~(SPECTRAL[ids] & mask).any(1)).mean(),
    )


def test_device_sampler_has_the_statistics_of_the_numpy_sampler():
    values, errors = _stars()
    weight = np.ones(len(BASE_VOCABULARY))
    weight[[BASE_VOCABULARY.index(t) for t in ("teff", "logg", "m_h")]] = 20.0
    weight[[BASE_VOCABULARY.index(t) for t in ("bprp", "jk")]] = 0.0
    kw = dict(
        context=64,
        min_inputs=5,
        target_weight=weight,
        n_targets=4,
        identity_fraction=0.25,
        spectral=SPECTRAL | np.isin(BASE_VOCABULARY, ["bprp", "jk"]),
        label_input_fraction=0.2,
        spectrum_targets=SPECTRAL | (np.array(BASE_VOCABULARY) == "g_fakemag"),
    )
    old = reference_sample_batch(values, errors, np.random.default_rng(1), **kw)
    new = sample_batch(
        torch.tensor(values, dtype=torch.float32), torch.tensor(errors, dtype=torch.float32), torch.Generator().manual_seed(1), **kw
    )
    new = [a.numpy() for a in new]
    (c_old, t_old, id_old, lab_old), (c_new, t_new, id_new, lab_new) = (
        _statistics(*old[:3:2], old[3], old[6]),
        _statistics(*new[:3:2], new[3], new[6]),
    )
    n = len(values)
    # input counts: 60 bins of ~1.3% each, binomial noise ~0.15% per bin (both samples)
    assert np.abs(c_old - c_new).max() < 5 * np.sqrt(2 * 0.02 / n)
    assert np.abs(np.cumsum(c_old) - np.cumsum(c_new)).max() < 0.03  # Kolmogorov-Smirnov-like, ~2 sigma at n = 6000
    # target frequencies per token (24,000 targets each)
    assert np.abs(t_old - t_new).max() < 5 * np.sqrt(2 * t_old.max() / (4 * n))
    for t in ("teff", "logg", "m_h"):
        j = BASE_VOCABULARY.index(t)
        assert abs(t_new[j] - t_old[j]) < 0.2 * t_old[j]
    assert t_new[BASE_VOCABULARY.index("bprp")] == t_new[BASE_VOCABULARY.index("jk")] == 0
    assert abs(id_old - id_new) < 0.03 and abs(lab_old - lab_new) < 0.03  # withheld targets, label-only stars
    assert abs(lab_new - 0.2) < 0.02


def test_a_pools_batches_hold_every_star_once_in_order_each_cut_to_its_longest_row():
    values, errors = _stars(4096, seed=2)
    gen = torch.Generator().manual_seed(3)
    sample = sample_batch(torch.tensor(values, dtype=torch.float32), torch.tensor(errors, dtype=torch.float32), gen, context=64)
    batches = list(trimmed_batches(sample, 512))
    assert len(batches) == 8 and sum(len(b[0]) for b in batches) == 4096
    assert torch.equal(torch.cat([b[4][:, 0] for b in batches]), sample[4][:, 0])  # the same stars, in the pool's order
    for _ids, _vals, mask, *_ in batches:
        assert mask.shape[1] == int(mask.sum(1).max())  # cut to its longest row


def test_held_and_streamed_samplers_give_every_star_once_an_epoch_from_seed_and_epoch(tmp_path):
    path = _tiny_store(tmp_path)
    for resident in ("memory", "stream"):
        s = TokenSampler(path, "train", TrainConfig(batch_size=64, seed=3, resident=resident, pool_batches=2).sampling(), 64)
        assert s.resident == resident

        def epoch(e, s=s):
            s.set_epoch(e)
            return [tuple(t.clone() for t in b) for b in s]

        a, b, c = epoch(0), epoch(0), epoch(1)
        assert len(a) == len(s) and sum(len(x[0]) for x in a) == s.n_stars
        assert all(torch.equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))  # (seed, epoch) alone
        assert not torch.equal(torch.cat([p[1].sum(1) for p in a]), torch.cat([p[1].sum(1) for p in c]))
        # each star once: the sum of its inputs' values is drawn anew, but its row count is not
        assert sum(int(p[6].any(1).sum()) for p in a) <= s.n_stars


def test_batch_lengths_round_up_to_a_multiple_within_the_context():
    values, errors = _stars(2048, seed=4)
    gen = torch.Generator().manual_seed(5)
    sample = sample_batch(torch.tensor(values, dtype=torch.float32), torch.tensor(errors, dtype=torch.float32), gen, context=64)
    for _ids, _vals, mask, *_ in trimmed_batches(sample, 256, multiple=8):
        longest = int(mask.sum(1).max())
        assert mask.shape[1] == min(-(-longest // 8) * 8, 64) and mask.shape[1] - longest < 8


def test_length_groups_give_the_whole_batchs_loss_and_gradient_on_fewer_padded_tokens():
    """A batch run as groups of similar input counts: the same loss and gradient as the whole
    batch at once (1e-5, float32), each group cut to its longest row, far fewer padded slots."""
    from pipeline.model.data import length_groups
    from pipeline.model.model import StellarTransformer, preset
    from pipeline.model.train import TokenJob, resolve_length_groups

    values, errors = _stars(512, seed=6)
    gen = torch.Generator().manual_seed(7)
    batch = sample_batch(torch.tensor(values, dtype=torch.float32), torch.tensor(errors, dtype=torch.float32), gen, context=64, n_targets=4)
    groups = length_groups(batch, 8)
    assert len(groups) == 8 and sum(len(g[0]) for g in groups) == 512
    for _ids, _vals, mask, *_ in groups:
        assert mask.shape[1] == int(mask.sum(1).max())
    assert sum(g[2].numel() for g in groups) < 0.75 * batch[2].numel()
    assert length_groups(batch, 1)[0] is batch

    torch.manual_seed(0)
    model = StellarTransformer(preset("tiny", vocab_size=len(BASE_VOCABULARY)))
    grads = []
    for n_groups in (1, 8):
        job = TokenJob(None, None, None, torch.device("cpu"), None, n_groups)
        model.zero_grad()
        loss, n = job.loss(model, batch)
        loss.backward()
        grads.append((float(loss), int(n), [p.grad.clone() for p in model.parameters()]))
    (l1, n1, g1), (l8, n8, g8) = grads
    assert n1 == n8 and abs(l1 - l8) < 1e-5
    assert max(float((a - b).abs().max()) for a, b in zip(g1, g8)) < 1e-5
    assert resolve_length_groups("auto", torch.device("cpu")) == 8 and resolve_length_groups("auto", torch.device("cuda")) == 1
    for bad in (0, "eight", True):
        with pytest.raises(ValueError, match="train.length_groups"):
            resolve_length_groups(bad, torch.device("cpu"))
