"""Training the stellar Transformer: eq. 11's loss, the sampler (present tokens, held-out outputs,
target weights, identity and label-input fractions), the token stream, and exact resumption."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_store as _tiny_store
from pipeline.model.data import TokenSampler
from pipeline.model.data import sample_batch as _sample_batch
from pipeline.model.model import preset, robust_gaussian_nll
from pipeline.model.train import TrainConfig, train
from pipeline.tokens.vocab import BASE_VOCABULARY


def test_loss_of_eq11_by_hand():
    # y_hat - y = 1, sigma_known = 0, sigma_pred^2 = 1: s = 0, J = 1/2
    j = robust_gaussian_nll(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]))
    assert float(j) == pytest.approx(0.5)
    # sigma_known^2 = 3, sigma_pred^2 = 1: s = ln 4, J = 1/(2*4) + ln(4)/2
    j = robust_gaussian_nll(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.0**0.5]))
    assert float(j) == pytest.approx(1 / 8 + np.log(4) / 2)


def test_beta_nll_weights_each_target_by_its_variance_held_constant():
    # y_hat - y = 2, sigma_known^2 = 3, sigma_pred^2 = 1: e^s = 4, eq. 11's J = 4/8 + ln(4)/2
    pred, logvar = torch.tensor([2.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    y, known = torch.tensor([0.0]), torch.tensor([3.0**0.5])
    j = robust_gaussian_nll(pred, logvar, y, known, beta=0.5)
    assert float(j) == pytest.approx((0.5 + np.log(4) / 2) * 4**0.5)  # times (e^s)^0.5 = 2
    j.backward()
    # the mean's gradient: (y_hat - y) / e^s * (e^s)^beta = 2 / 4 * 2 = 1 (eq. 11's: 1/2)
    assert float(pred.grad) == pytest.approx(1.0)
    # the variance is still learnt: dJ/dlogvar = (1/2 - (y_hat - y)^2 / (2 e^s)) * sigma_pred^2 / e^s * 2
    assert float(logvar.grad) == pytest.approx((0.5 - 4 / 8) * (1 / 4) * 2)
    # beta 1: the mean's gradient is the plain residual, whatever the variance
    pred.grad = None
    robust_gaussian_nll(pred, torch.tensor([1.5]), y, known, beta=1.0).backward()
    assert float(pred.grad) == pytest.approx(2.0)


def sample_batch(values, errors, rng, context, *args, **kwargs):
    """The torch sampler on the tests' numpy arrays (a generator seeded from ``rng``), back as numpy."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return tuple(a.numpy() for a in _sample_batch(as_t(values), as_t(errors), gen, context, *args, **kwargs))


def test_sampler_picks_present_tokens_and_respects_held_out_outputs():
    rng = np.random.default_rng(0)
    v = len(BASE_VOCABULARY)
    values = rng.normal(size=(400, v))
    values[rng.random((400, v)) < 0.6] = np.nan
    values[0] = np.nan
    values[0, [110, 112]] = 1.0  # only bprp and jk: nothing to ask for
    errors = np.abs(values) * 0.1
    target_mask = np.array([t not in ("bprp", "jk") for t in BASE_VOCABULARY])
    ids, vals, mask, tid, target, terr, ok = sample_batch(values, errors, rng, context=64, min_inputs=5, target_weight=target_mask)
    assert ids.shape == (400, 64) and tid.shape == (400, 1) and not ok[0, 0] and ok[1:, 0].all()
    ok, tid = ok[:, 0], tid[:, 0]
    n_present = np.isfinite(values).sum(axis=1)
    n_in = mask.sum(axis=1)
    assert (n_in <= np.minimum(64, n_present)).all() and (n_in >= np.minimum(5, n_present)).all()
    rows = np.arange(400)[:, None]
    assert np.isfinite(values[rows, ids][mask]).all()  # inputs are present tokens
    np.testing.assert_array_equal(vals[mask], values[rows, ids][mask].astype(np.float32))
    assert not np.isin(tid[ok], [110, 112]).any()  # never ask for held-out outputs
    assert np.isfinite(values[np.arange(400)[ok], tid[ok]]).all()
    assert len(np.unique(n_in)) > 20  # the number of inputs varies


def test_sampler_draws_distinct_targets():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 118))
    values[:, 10:] = np.nan  # 10 present tokens
    values[0, 3:] = np.nan  # 3 present: only 3 targets
    *_, tid, target, terr, ok = sample_batch(values, values * 0 + 0.1, rng, context=64, n_targets=4)
    assert tid.shape == (50, 4) and ok[1:].all() and ok[0].sum() == 3
    assert all(len(set(r)) == 4 for r in tid[1:])


def test_target_weights_set_the_odds_of_each_target():
    """With weight 9 on token 0 and 1 on tokens 1..9, token 0 is the single target 9/18 = 50% of
    the time (by hand: w0 / sum w), and a weight of 0 means never."""
    rng = np.random.default_rng(2)
    values = np.full((20000, 118), np.nan)
    values[:, :11] = 0.5
    w = np.zeros(118)
    w[0], w[1:10] = 9.0, 1.0  # token 10 is present but has weight 0
    *_, tid, target, terr, ok = sample_batch(values, values * 0 + 0.1, rng, context=64, target_weight=w)
    assert ok.all() and not (tid == 10).any()
    assert abs((tid == 0).mean() - 0.5) < 0.015
    assert abs((tid == 1).mean() - 1 / 18) < 0.006


def test_each_epoch_draws_new_samples_with_workers(tmp_path):
    path = _tiny_store(tmp_path)
    s = TokenSampler(path, "train", TrainConfig(batch_size=64, seed=3).sampling(), 64)
    loader = torch.utils.data.DataLoader(s, batch_size=None, num_workers=2)
    sums = []
    for epoch in (0, 1):
        s.set_epoch(epoch)
        sums.append(sorted(float(b[1].sum()) for b in loader))
    assert sums[0] != sums[1]


def test_token_stream_is_the_same_with_dataloader_workers(tmp_path):
    path = _tiny_store(tmp_path)
    s = TokenSampler(path, "train", TrainConfig(batch_size=64, seed=3).sampling(), 64)
    s.set_epoch(2)
    direct = {int(b[0][0, 0]) * 0 + i: b for i, b in enumerate(s)}
    loader = torch.utils.data.DataLoader(s, batch_size=None, num_workers=2)
    got = list(loader)
    assert len(got) == len(direct) == len(s)
    key = lambda b: (b[3].sum().item(), b[1].sum().item())  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, direct.values()))


def test_resumed_training_ends_with_the_same_weights(tmp_path):
    path = _tiny_store(tmp_path)
    cfg = TrainConfig(epochs_per_cycle=2, cycles=2, batch_size=64, checkpoint_every=1, seed=1, threads=1)
    full, _ = train(path, tmp_path / "full", preset("tiny", dropout=0.1), cfg, resume=False)
    train(path, tmp_path / "cut", preset("tiny", dropout=0.1), cfg, resume=False, stop_after_epoch=1)
    resumed, hist = train(path, tmp_path / "cut", preset("tiny", dropout=0.1), cfg, resume=True)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert len(hist) == 4
    # a checkpoint of another configuration is not resumed
    other = TrainConfig(epochs_per_cycle=2, cycles=2, batch_size=64, checkpoint_every=1, seed=1, threads=1, lr=5e-4)
    _, hist2 = train(path, tmp_path / "cut", preset("tiny", dropout=0.1), other, resume=True, stop_after_epoch=0)
    assert len(hist2) == 1
    h = pd.read_csv(tmp_path / "full" / "history.csv")
    assert list(h.columns[:4]) == ["epoch", "train_loss", "val_loss", "lr"] and len(h) == 4
    # resuming a finished run (Snakemake deleted the outputs first) writes every output again
    for f in ("model.pt", "config.json", "history.csv"):
        (tmp_path / "full" / f).unlink()
    train(path, tmp_path / "full", preset("tiny", dropout=0.1), cfg, resume=True)
    assert len(pd.read_csv(tmp_path / "full" / "history.csv")) == 4 and (tmp_path / "full" / "model.pt").exists()


def test_a_checkpoint_of_other_training_code_is_not_resumed(monkeypatch):
    from pipeline.model import train as train_module

    a = train_module.run_signature(preset("tiny"), TrainConfig(), "store")
    monkeypatch.setattr(train_module, "code_hash", lambda path: "edited")
    assert train_module.run_signature(preset("tiny"), TrainConfig(), "store") != a


def test_identity_fraction_withholds_targets_from_the_inputs():
    """identity_fraction 0: a target is never among its star's inputs; 1: it is whenever drawn (paper)."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2000, 118))
    values[:, 40:] = np.nan  # 40 present tokens: all fit in the context
    errors = np.abs(values) * 0.1

    def share_in_inputs(frac):
        ids, vals, mask, tid, target, terr, ok = sample_batch(
            values, errors, np.random.default_rng(4), context=64, min_inputs=64, n_targets=3, identity_fraction=frac
        )
        given = np.zeros((2000, 118), bool)
        given[np.nonzero(mask)[0], ids[mask]] = True
        return np.take_along_axis(given, tid, axis=1)[ok].mean(), mask.sum(axis=1)

    none, n_none = share_in_inputs(0.0)
    assert none == 0.0 and (n_none == 37).all()  # 40 present minus the 3 targets
    all_, n_all = share_in_inputs(1.0)
    assert all_ == 1.0 and (n_all == 40).all()
    tenth, _ = share_in_inputs(0.1)
    assert abs(tenth - 0.1) < 0.03


def test_label_input_fraction_gives_stars_only_labels_and_asks_for_spectra():
    """A share of stars sees only non-XP tokens (1 to all of the present ones) and is asked for XP
    coefficients: the parameters-to-spectra questions of Figs. 6, 7, 11 and 13."""
    from pipeline.tokens.vocab import BASE_VOCABULARY

    rng = np.random.default_rng(5)
    values = rng.normal(size=(4000, 118))
    values[:, 30:55] = np.nan  # bp30-54 missing: fewer candidates, as for real stars
    spectral = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in BASE_VOCABULARY])
    ids, vals, mask, tid, target, terr, ok = sample_batch(
        values,
        np.abs(values) * 0.1,
        np.random.default_rng(6),
        context=64,
        n_targets=2,
        identity_fraction=0.1,
        spectral=spectral,
        label_input_fraction=0.25,
    )
    labels_only = ~(spectral[ids] & mask).any(axis=1)
    assert abs(labels_only.mean() - 0.25) < 0.03
    assert spectral[tid[labels_only]].all() and ok[labels_only].all()  # they are asked for XP only
    n_in = mask[labels_only].sum(axis=1)
    assert n_in.min() == 1 and n_in.max() == 8 and set(np.unique(n_in)) == set(range(1, 9))  # 1 to all 8 labels
    assert (mask[~labels_only].sum(axis=1) >= 5).all()  # the others as before
    # the luminosity too, as the trainer asks (a spectrum at 10 pc needs it)
    wanted = spectral | (np.array(BASE_VOCABULARY) == "g_fakemag")
    weight = np.where(np.array(BASE_VOCABULARY) == "g_fakemag", 20.0, 1.0)
    ids, _, mask, tid, _, _, ok = sample_batch(
        values,
        np.abs(values) * 0.1,
        np.random.default_rng(7),
        context=64,
        target_weight=weight,
        n_targets=2,
        spectral=spectral,
        label_input_fraction=0.25,
        spectrum_targets=wanted,
    )
    labels_only = ~(spectral[ids] & mask).any(axis=1)
    asked = tid[labels_only]
    assert wanted[asked].all() and (asked == BASE_VOCABULARY.index("g_fakemag")).any(axis=1).mean() > 0.2
    with pytest.raises(ValueError, match="spectral"):
        sample_batch(values, values, np.random.default_rng(0), context=64, label_input_fraction=0.2)


def test_label_only_stars_of_the_stream_never_see_the_held_out_outputs(tmp_path):
    """The trainer's stream: label-only stars get no XP and no bprp/jk as inputs, and are asked
    for XP coefficients or g_fakemag only."""
    s = TokenSampler(
        _tiny_store(tmp_path), "train", TrainConfig(batch_size=64, seed=3, targets_per_star=2, label_input_fraction=0.3).sampling(), 64
    )
    s.set_epoch(0)
    vocab = np.array(s.vocab)
    xp = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in vocab])
    seen = 0
    for ids, _vals, mask, tid, *_ in s:
        ids, mask, tid = ids.numpy(), mask.numpy(), tid.numpy()
        labels_only = ~(xp[ids] & mask).any(axis=1)
        seen += labels_only.sum()
        given = vocab[ids[labels_only]][mask[labels_only]]
        assert not np.isin(given, ["bprp", "jk"]).any()
        asked = vocab[tid[labels_only]]
        assert (xp[tid[labels_only]] | (asked == "g_fakemag")).all()
    assert seen > 50


def test_label_only_stars_may_be_given_the_held_out_outputs_when_asked(tmp_path):
    """train.label_inputs_held_out: label-only stars also get bprp and jk as inputs (task h's inputs,
    parameters + colours without XP), still never as targets."""
    s = TokenSampler(
        _tiny_store(tmp_path),
        "train",
        TrainConfig(batch_size=64, seed=3, targets_per_star=2, label_input_fraction=0.5, label_inputs_held_out=True).sampling(),
        64,
    )
    s.set_epoch(0)
    vocab = np.array(s.vocab)
    xp = np.array([t[:2] in ("bp", "rp") and t[2:].isdigit() for t in vocab])
    given_held_out = 0
    for ids, _vals, mask, tid, *_ in s:
        ids, mask, tid = ids.numpy(), mask.numpy(), tid.numpy()
        labels_only = ~(xp[ids] & mask).any(axis=1)
        given_held_out += np.isin(vocab[ids[labels_only]][mask[labels_only]], ["bprp", "jk"]).sum()
        assert not np.isin(vocab[tid], ["bprp", "jk"]).any()
    assert given_held_out > 20


def test_stars_with_keeps_only_the_stars_that_have_the_token(tmp_path):
    """A fine-tune on the giants with a mass: the stream holds exactly the split's stars with the token."""
    from pipeline.tokens.store import SPLIT_NAMES, open_token_store

    path = _tiny_store(tmp_path)
    root = open_token_store(path)
    vocab = list(root.attrs["vocabulary"])
    teff = np.isfinite(root["values"][:][:, vocab.index("teff")])
    train = root["split"][:] == SPLIT_NAMES.index("train")
    everyone = TokenSampler(path, "train", TrainConfig(batch_size=64, seed=3).sampling(), 64)
    s = TokenSampler(
        path, "train", TrainConfig(batch_size=64, seed=3, min_inputs=128, stars_with=["teff"]).sampling(), 128
    )  # every present token an input
    assert everyone.n_stars == train.sum() > s.n_stars == (train & teff).sum() > 0
    s.set_epoch(0)
    seen = 0
    for ids, _, mask, *_ in s:
        has_teff = ((ids == vocab.index("teff")) & mask).any(axis=1)
        assert bool(has_teff.all())
        seen += len(ids)
    assert seen == s.n_stars
    with pytest.raises(ValueError, match="stars_with"):
        TokenSampler(path, "train", TrainConfig(batch_size=64, stars_with=["mass"]).sampling(), 64)


def test_label_input_targets_add_to_what_label_only_stars_are_asked(tmp_path):
    s = TokenSampler(
        _tiny_store(tmp_path),
        "train",
        TrainConfig(batch_size=64, seed=3, targets_per_star=2, label_input_fraction=1.0, label_input_targets=("teff",)).sampling(),
        64,
    )
    s.set_epoch(0)
    vocab = np.array(s.vocab)
    asked = np.concatenate([vocab[tid.numpy()[ok.numpy()]] for *_, tid, _, _, ok in s])
    allowed = np.isin(asked, ["g_fakemag", "teff"]) | np.array([a[:2] in ("bp", "rp") and a[2:].isdigit() for a in asked])
    assert allowed.all() and (asked == "teff").sum() > 0
    with pytest.raises(ValueError, match="label_input_targets"):
        TokenSampler(_tiny_store(tmp_path, seed=1), "train", TrainConfig(batch_size=64, label_input_targets=("mass",)).sampling(), 64)


def test_with_two_threads_reruns_and_resumed_runs_are_bit_for_bit(tmp_path):
    """Two threads, like the workflow's jobs: a rerun and an interrupted-and-resumed run end with
    the same weights to the bit (the embedding's rows gathered by F.embedding, whose backward adds
    in a fixed order; indexing's did not, and two fresh runs' verdicts differed like seeds)."""
    path = _tiny_store(tmp_path, n=600)
    cfg = TrainConfig(epochs_per_cycle=1, cycles=2, batch_size=64, checkpoint_every=1, seed=1, threads=2)
    a, _ = train(path, tmp_path / "a", preset("small", dropout=0.1), cfg, resume=False)
    b, _ = train(path, tmp_path / "b", preset("small", dropout=0.1), cfg, resume=False)
    train(path, tmp_path / "c", preset("small", dropout=0.1), cfg, resume=False, stop_after_epoch=0)
    c, _ = train(path, tmp_path / "c", preset("small", dropout=0.1), cfg, resume=True)
    for other in (b, c):
        different = [k for k, p in a.state_dict().items() if not torch.equal(p, other.state_dict()[k])]
        assert different == [], different


def test_a_share_of_label_only_stars_may_be_given_the_held_out_outputs(tmp_path):
    """train.label_inputs_held_out as a number: that share of the label-only stars may be given bprp
    or jk (so half as many are given one as with true); false gives none."""
    store = _tiny_store(tmp_path)

    def share_given(setting):
        cfg = TrainConfig(batch_size=64, seed=3, label_input_fraction=1.0, label_inputs_held_out=setting)
        s = TokenSampler(store, "train", cfg.sampling(), 64)
        vocab, given, stars = np.array(s.vocab), 0, 0
        for epoch in range(6):
            s.set_epoch(epoch)
            for ids, _vals, mask, *_ in s:  # every star label-only (label_input_fraction 1)
                names = np.where(mask.numpy(), vocab[ids.numpy()], "")
                given += np.isin(names, ["bprp", "jk"]).any(axis=1).sum()
                stars += len(names)
        return given / stars

    none, half, every = share_given(False), share_given(0.5), share_given(True)
    assert none == 0.0 and every > 0.3, (none, every)
    assert 0.42 < half / every < 0.58, (half, every)
    with pytest.raises(ValueError, match="label_inputs_held_out"):
        TokenSampler(store, "train", TrainConfig(batch_size=64, label_inputs_held_out=1.5).sampling(), 64)
