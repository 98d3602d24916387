"""The contrastive star search of appendix C: the loss of eqs. C1-C6, training, the database, queries, CLI."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.__main__ import main
from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train
from pipeline.search.contrastive import SearchConfig, StarSearch, soft_contrastive_loss, top_n_recovery, train_search
from test_model import _tiny_store


def test_contrastive_loss_by_hand():
    # y_j = y_k = the two unit vectors, tau = 1: z = I (C1), the targets are Softmax(I) (C4), so each
    # direction's cross-entropy is the entropy of (e, 1) / (e + 1): 0.58220 (C3, C5), and so is the mean (C6).
    y = torch.eye(2)
    p = math.e / (math.e + 1)
    want = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert float(soft_contrastive_loss(y, y, temperature=1.0)) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(0.58220, abs=1e-5)


def test_contrastive_targets_carry_no_gradient():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1).requires_grad_(True)
    b = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1).requires_grad_(True)
    soft_contrastive_loss(a, b, 0.05).backward()
    with torch.no_grad():
        target = torch.softmax((a @ a.T + b @ b.T) / 2 / 0.05, dim=-1)
    a2, b2 = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    z = a2 @ b2.T
    fixed = (-(target * torch.log_softmax(z / 0.05, -1)).sum(-1).mean() - (target.T * torch.log_softmax(z.T / 0.05, -1)).sum(-1).mean()) / 2
    fixed.backward()
    torch.testing.assert_close(a.grad, a2.grad)
    torch.testing.assert_close(b.grad, b2.grad)


def test_matching_pairs_cost_less_than_shuffled_ones():
    torch.manual_seed(1)
    y = torch.nn.functional.normalize(torch.randn(32, 8), dim=-1)
    noisy = torch.nn.functional.normalize(y + 0.05 * torch.randn(32, 8), dim=-1)
    assert float(soft_contrastive_loss(y, noisy)) < float(soft_contrastive_loss(y, noisy[torch.randperm(32)]))


def test_top_n_recovery():
    assert top_n_recovery([0, 5, 99, 100, 400], 100) == pytest.approx(0.6)
    assert top_n_recovery([0, 5, 99, 100, 400], 1) == pytest.approx(0.2)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    store = _tiny_store(tmp, n=900)
    train(store, tmp / "base", preset("tiny"), TrainConfig(epochs_per_cycle=2, cycles=1, batch_size=64, threads=1), resume=False)
    cfg = SearchConfig(epochs=3, batch_size=64, threads=1, embed_dim=16, hidden=32, query_tokens=("teff", "logg", "m_h", "jh", "jk"))
    history = train_search(tmp / "base", store, tmp / "search", cfg)
    return tmp, store, history


def test_search_training_writes_the_model_and_a_test_split_database(searcher):
    from pipeline.tokens.store import split_table

    tmp, store, history = searcher
    assert [h["epoch"] for h in history] == [0, 1, 2] and all(np.isfinite(h["val_loss"]) for h in history)
    s = StarSearch.load(tmp / "search")
    test = split_table(store, "test")
    expected = test[test[["teff", "logg", "m_h"]].notna().all(axis=1)]
    assert sorted(s.database.row) == sorted(expected.row)
    norms = np.linalg.norm(s.matrix, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert s.matrix.shape[1] == 16


def test_a_query_returns_the_best_matches_first_and_ranks_are_consistent(searcher):
    tmp, _, _ = searcher
    s = StarSearch.load(tmp / "search")
    hits = s.query({"teff": 4700.0, "logg": 2.5}, top=10)
    assert len(hits) == 10 and hits.similarity.is_monotonic_decreasing
    assert set(hits.row) <= set(s.database.row)
    q = s.embed_queries(pd.DataFrame([{"teff": 4700.0, "logg": 2.5}]))[0]
    assert hits.similarity.iloc[0] == pytest.approx(float((s.matrix @ q).max()), rel=1e-5)
    ranks = s.ranks_of_own_spectra(s.database[list(s.cfg.query_tokens)])
    assert ranks.min() >= 0 and ranks.max() < len(s.database)
    with pytest.raises(ValueError, match="not among the search's query tokens"):
        s.query({"bprp": 1.0})


def test_cli_search(searcher, tmp_path, capsys):
    tmp, _, _ = searcher
    assert main(["search", "--model", str(tmp / "search"), "--query", "teff=4700", "logg=2.5", "--top", "3"]) == 0
    assert "similarity" in capsys.readouterr().out
    out = tmp_path / "hits.csv"
    assert main(["search", "--model", str(tmp / "search"), "--query", "jh=0.6", "--top", "4", "--output", str(out)]) == 0
    assert len(pd.read_csv(out)) == 4
    assert main(["search", "--model", str(tmp / "search"), "--query", "teff"]) == 2


def test_partial_queries_leave_out_tokens_of_a_share_of_rows_and_keep_one():
    from pipeline.search.contrastive import partial_queries

    mask = torch.ones(4000, 5, dtype=torch.bool)
    mask[:, 4] = False  # jk missing for everyone: never switched on
    out = partial_queries(mask, 0.5, torch.Generator().manual_seed(0))
    assert not (out & ~mask).any() and out.any(1).all()  # only present tokens, at least one per row
    changed = (out != mask).any(1).float().mean().item()
    assert 0.40 < changed < 0.50  # half the rows are partial; a few keep all 4 tokens by chance (1/2^4 of them)
    assert torch.equal(partial_queries(mask, 0.0), mask)


def test_a_resumed_search_training_ends_with_the_same_weights(searcher, tmp_path):
    """The search trains through the shared engine: interrupted after an epoch and resumed, bit for bit (1 thread)."""
    tmp, store, _ = searcher
    cfg = SearchConfig(epochs=3, batch_size=64, threads=1, embed_dim=16, hidden=32, query_tokens=("teff", "logg", "m_h", "jh", "jk"))
    train_search(tmp / "base", store, tmp_path / "full", cfg)
    assert train_search(tmp / "base", store, tmp_path / "cut", cfg, stop_after_epoch=0) and not (tmp_path / "cut/search.pt").exists()
    train_search(tmp / "base", store, tmp_path / "cut", cfg)
    a, b = torch.load(tmp_path / "full/search.pt"), torch.load(tmp_path / "cut/search.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
