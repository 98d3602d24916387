"""Contrastive star search (appendix C of Leung & Bovy): the trained model as a foundation model.

Two copies of the trained model's embedding and encoder, each with a small projection head, map
a star's XP spectrum and its parameters and colours into one space. They are fine-tuned with the
soft-target contrastive loss of eqs. C1-C6: logits z = y_j y_k^T (C1) between the spectra
embeddings y_j and the parameter embeddings y_k of a mini-batch, a Softmax with temperature tau
(C2), cross-entropy (C3) against the "ground truth" y = Softmax((y_j y_j^T + y_k y_k^T) / 2, tau)
(C4) in both directions (C5), averaged (C6). The targets are treated as constants (no gradient
flows through C4), so the loss cannot be lowered by reshaping its own targets.

A database of test-split spectra embeddings is then searched by dot product with the embedding
of any set of parameters and colours: a whole star (top-N recovery of its own spectrum) or a
partial query such as Teff = 4700 K, logg = 2.5.

Read top to bottom: config, encoder, loss, training, database, search.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..model.model import StellarTransformer
from .settings import XP32, SearchConfig  # noqa: F401  (XP32: part of this module's interface)

log = logging.getLogger(__name__)


class StarEncoder(nn.Module):
    """A copy of a trained model's embedding and encoder, mean-pooled over the given tokens, then a
    projection head; returns unit vectors."""

    def __init__(self, net, embed_dim: int, hidden: int):
        super().__init__()
        self.embedding = copy.deepcopy(net.embedding)
        self.encoder = copy.deepcopy(net.encoder)
        d = net.cfg.embed_dim
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, ids, values, mask):
        x = self.embedding(StellarTransformer.rows(ids, mask), torch.where(mask, values, torch.zeros_like(values)))
        for block in self.encoder:
            x = block(x, mask)[0]
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return F.normalize(self.head(pooled), dim=-1)


class ContrastiveSearch(nn.Module):
    def __init__(self, net, cfg: SearchConfig):
        super().__init__()
        self.spectra = StarEncoder(net, cfg.embed_dim, cfg.hidden)
        self.params = StarEncoder(net, cfg.embed_dim, cfg.hidden)


def partial_queries(mask, fraction: float, generator=None):
    """Leave out a random part of the query tokens of a ``fraction`` of the rows (each token kept
    with probability 1/2, and always one of those present), so that the parameter encoder learns
    to place a partial query (Teff and logg only, J-H only) among the spectra it fits."""
    if fraction <= 0:
        return mask
    b, n = mask.shape
    u = torch.rand(3, b, n, generator=generator).to(mask.device)
    partial = u[0, :, :1] < fraction
    one = torch.zeros_like(mask).scatter_(1, u[1].masked_fill(~mask, -1.0).argmax(1, keepdim=True), True)
    return torch.where(partial, mask & ((u[2] < 0.5) | one), mask)


def soft_contrastive_loss(y_j, y_k, temperature: float = 0.05):
    """Eqs. C1-C6 for spectra embeddings y_j and parameter embeddings y_k, both (m, d)."""
    z = y_j @ y_k.T  # C1
    with torch.no_grad():  # C4: the "ground truth", a constant of the step
        y = torch.softmax((y_j @ y_j.T + y_k @ y_k.T) / 2 / temperature, dim=-1)
    j_j = -(y * torch.log_softmax(z / temperature, dim=-1)).sum(-1).mean()  # C2, C3, C5
    j_k = -(y.T * torch.log_softmax(z.T / temperature, dim=-1)).sum(-1).mean()
    return (j_j + j_k) / 2  # C6


# -- data ------------------------------------------------------------------------------------------
def search_stars(store_path, split: str, cfg: SearchConfig) -> pd.DataFrame:
    """Stars of a split with enough of the spectra tokens and every one of teff, logg, m_h (the query's core)."""
    from ..tokens.store import split_table

    df = split_table(store_path, split, (*cfg.spectra_tokens, *cfg.query_tokens))
    core = [t for t in ("teff", "logg", "m_h") if t in cfg.query_tokens] or list(cfg.query_tokens)
    ok = (df[list(cfg.spectra_tokens)].notna().sum(axis=1) >= cfg.min_spectra_tokens) & df[core].notna().all(axis=1)
    return df[ok].reset_index(drop=True)


def _tensors(base, df, tokens):
    return base.inputs(df[list(tokens)])


def _embed(encoder, tensors, batch_size=4096):
    ids, vals, mask = tensors
    out = []
    with torch.no_grad():
        for s in range(0, ids.shape[0], batch_size):
            out.append(encoder(ids[s : s + batch_size], vals[s : s + batch_size], mask[s : s + batch_size]).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


# -- training ----------------------------------------------------------------------------------------
class SearchJob:
    """The engine's job for the search: batches of train stars (full batches only: the loss's scale
    depends on the batch size), each with its partial queries, drawn from (seed, epoch)."""

    def __init__(self, tensors, cfg: SearchConfig, device):
        self.train, self.val = tensors["train"], tensors["val"]
        self.cfg, self.device = cfg, device
        self.n = self.train[0][0].shape[0]

    def n_batches(self):
        return max(1, self.n // self.cfg.batch_size)

    def batches(self, epoch):
        perm = torch.as_tensor(np.random.default_rng([self.cfg.seed, epoch]).permutation(self.n))
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        qm = self.train[1][2]
        for i in range(self.n_batches()):
            b = perm[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size].to(self.device)
            yield b, partial_queries(qm[b], self.cfg.partial_query_fraction, gen)

    def stars(self, batch):
        return len(batch[0])

    def loss(self, model, batch):
        b, q_mask = batch
        (si, sv, sm), (qi, qv, _) = self.train
        return soft_contrastive_loss(model.spectra(si[b], sv[b], sm[b]), model.params(qi[b], qv[b], q_mask), self.cfg.temperature), 1

    def validation_loss(self, model):
        return _val_loss(model, self.val, self.cfg)


def train_search(base_dir, store_path, out_dir, cfg: SearchConfig, on_epoch=None, resume: bool = True, stop_after_epoch=None):
    """Fine-tune the two encoders on the train split (through ``engine.run``: one process, float32,
    resumable); write search.pt, config.json, history.csv and the test-split database
    (database.parquet). Returns the history."""
    from .. import engine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = engine.Setup.of(cfg, precision="float32")
    prepare = partial(_search_training, Path(base_dir), store_path, out, cfg)
    return engine.run(prepare, setup, out, resume=resume, stop_after_epoch=stop_after_epoch, on_epoch=on_epoch)[1]


def _search_training(base_dir: Path, store_path, out: Path, cfg: SearchConfig, place):
    """The engine's training of the search on ``place``: the two encoders over the base model, the
    train and validation stars, and the files rank 0 writes at the end."""
    from ..engine import Schedule, Training
    from ..hashing import config_hash
    from ..model.api import StellarModel
    from ..workflow.codedeps import code_hash

    base = StellarModel.load(base_dir, device=str(place.device))
    unknown = [t for t in (*cfg.spectra_tokens, *cfg.query_tokens) if t not in base.token_index]
    if unknown:
        raise ValueError(f"search tokens {unknown} are not in the base model's vocabulary")
    if "bprp" in cfg.query_tokens:
        log.warning("search.query_tokens include bprp: the paper leaves it out, as it leaks the spectrum's colour")
    model = ContrastiveSearch(base.net, cfg).to(place.device)
    enc_params = [p for m in (model.spectra, model.params) for n, p in m.named_parameters() if not n.startswith("head")]
    groups, lrs = [[p for m in (model.spectra, model.params) for p in m.head.parameters()]], [cfg.lr]
    if cfg.encoder_lr > 0:
        groups.append(enc_params)
        lrs.append(cfg.encoder_lr)
    else:
        for p in enc_params:
            p.requires_grad_(False)
    data = {s: search_stars(store_path, s, cfg) for s in ("train", "val")}
    if len(data["train"]) < cfg.batch_size // 4:
        raise ValueError(f"{store_path}: only {len(data['train'])} train stars have XP and teff, logg, m_h for the search")
    job = SearchJob(
        {s: (_tensors(base, d, cfg.spectra_tokens), _tensors(base, d, cfg.query_tokens)) for s, d in data.items()}, cfg, place.device
    )
    log.info(
        "contrastive search: %d train / %d val stars, %d epochs of %d batches, tau %.3g",
        job.n,
        len(data["val"]),
        cfg.epochs,
        job.n_batches(),
        cfg.temperature,
    )
    signature = config_hash(
        {
            "search": _jsonable(asdict(cfg)),
            "code": code_hash(__file__),
            "rows": len(data["train"]),
            "base": hashlib.sha256((base_dir / "model.pt").read_bytes()).hexdigest()[:16],
        }
    )
    schedule = Schedule(epochs=cfg.epochs, lr=lrs, weight_decay=cfg.weight_decay, grad_clip=None)
    return Training(
        model,
        job,
        schedule,
        signature,
        param_groups=groups,
        finish=partial(_write_search, out, base_dir, base, store_path, cfg),
        name="search epoch",
    )


def _write_search(out: Path, base_dir: Path, base, store_path, cfg: SearchConfig, model):
    """The search's folder: the encoders' weights, its settings and the test split's database."""
    from ..io.atomic import torch_save, write_json, write_parquet

    model.eval()
    torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "search.pt")
    write_json({"format": "stellar-search/1", "base_model": str(base_dir), "search": _jsonable(asdict(cfg))}, out / "config.json")
    write_parquet(build_database(model, base, store_path, cfg), out / "database.parquet")


def _val_loss(model, tensors, cfg):
    (si, sv, sm), (qi, qv, qm) = tensors
    m = si.shape[0] - si.shape[0] % cfg.batch_size or si.shape[0]
    losses = []
    with torch.no_grad():
        for s in range(0, m, cfg.batch_size):
            sl = slice(s, s + cfg.batch_size)
            losses.append(
                float(soft_contrastive_loss(model.spectra(si[sl], sv[sl], sm[sl]), model.params(qi[sl], qv[sl], qm[sl]), cfg.temperature))
            )
    return float(np.mean(losses)) if losses else float("nan")


def _jsonable(d):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# -- database and search -------------------------------------------------------------------------------
def build_database(model: ContrastiveSearch, base, store_path, cfg: SearchConfig, split: str = "test") -> pd.DataFrame:
    """The embeddings of a split's spectra, with row, source_id and the stars' query tokens (for reference)."""
    model.eval()
    d = search_stars(store_path, split, cfg)
    emb = _embed(model.spectra, _tensors(base, d, cfg.spectra_tokens))
    db = d[["row", "source_id", *cfg.query_tokens]].copy()
    db["embedding"] = list(emb.astype(np.float32))
    return db


class StarSearch:
    """A trained search model and its database: ``query`` returns the stars whose spectra embed
    closest to a set of parameters and colours."""

    def __init__(self, model: ContrastiveSearch, base, cfg: SearchConfig, database: pd.DataFrame):
        self.model, self.base, self.cfg, self.database = model.eval(), base, cfg, database
        self.matrix = np.stack(database.embedding.to_numpy()) if len(database) else np.zeros((0, cfg.embed_dim), np.float32)

    @classmethod
    def load(cls, search_dir, device: str | None = None):
        from ..model.api import StellarModel

        d = Path(search_dir)
        for f in ("config.json", "search.pt", "database.parquet"):
            if not (d / f).exists():
                raise FileNotFoundError(f"{d / f}: not a search folder (run the search_train rule)")
        meta = json.loads((d / "config.json").read_text())
        cfg = SearchConfig.from_dict(meta["search"])
        base = StellarModel.load(meta["base_model"], device=device or "cpu")
        model = ContrastiveSearch(base.net, cfg)
        model.load_state_dict(torch.load(d / "search.pt", map_location="cpu", weights_only=True))
        return cls(model.to(base.device), base, cfg, pd.read_parquet(d / "database.parquet"))

    def embed_queries(self, table: pd.DataFrame) -> np.ndarray:
        unknown = [c for c in table.columns if c not in self.cfg.query_tokens]
        if unknown:
            raise ValueError(f"query columns {unknown} are not among the search's query tokens {list(self.cfg.query_tokens)}")
        return _embed(self.model.params, self.base.inputs(table))

    def query(self, values: dict, top: int = 100) -> pd.DataFrame:
        """The ``top`` database stars most similar to one query, e.g. {"teff": 4700, "logg": 2.5}, best first."""
        q = self.embed_queries(pd.DataFrame([values]))[0]
        sim = self.matrix @ q
        best = np.argsort(-sim)[:top]
        return self.database.drop(columns="embedding").iloc[best].assign(similarity=sim[best]).reset_index(drop=True)

    def ranks_of_own_spectra(self, table: pd.DataFrame) -> np.ndarray:
        """For database stars queried with their own parameters (``table`` aligned with the database
        rows): the rank (0 = best) of each star's own spectrum among all database spectra."""
        q = self.embed_queries(table[list(self.cfg.query_tokens)])
        ranks = np.empty(len(q), np.int64)
        for s in range(0, len(q), 2048):  # (queries x database) similarities, a block at a time
            sim = q[s : s + 2048] @ self.matrix.T
            own = sim[np.arange(sim.shape[0]), np.arange(s, s + sim.shape[0])]  # the same product: no rounding mismatch
            ranks[s : s + 2048] = (sim > own[:, None]).sum(axis=1)
        return ranks


def top_n_recovery(ranks, n: int) -> float:
    """Fraction of stars whose own spectrum is among the n most similar (rank < n)."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < n)) if ranks.size else float("nan")
