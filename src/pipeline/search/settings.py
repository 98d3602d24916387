"""The contrastive search's settings (the ``search`` block): their one home. Free of torch, so that
the workflow reads the defaults when it parses (``pipeline.configuration``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import from_dict

XP32 = tuple(f"{b}{k}" for b in ("bp", "rp") for k in range(32))  # 64 tokens: the model's context


@dataclass
class SearchConfig:
    spectra_tokens: tuple = XP32
    query_tokens: tuple = ("teff", "logg", "m_h", "jh", "jk")  # parameters and colours, without BP-RP (leakage)
    embed_dim: int = 64  # the common embedding space
    hidden: int = 256  # the projection head's hidden width
    temperature: float = 0.05  # tau of eqs. C2 and C4
    epochs: int = 8  # passes over the training stars
    batch_size: int = 512
    lr: float = 1e-3  # projection heads
    encoder_lr: float = 1e-4  # the copied encoders (0: frozen)
    weight_decay: float = 1e-4  # AdamW's
    min_spectra_tokens: int = 10  # stars with fewer XP tokens are left out
    partial_query_fraction: float = 0.5  # share of training queries with a random part of their tokens left out
    seed: int = 0  # of the initialisation and the batches
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0: the job's)
    top_n: int = 100  # stars returned per query (the evaluation scores them)
    queries: list = field(default_factory=lambda: [{"teff": 4700.0, "logg": 2.5}, {"jh": 0.6}, {"teff": 5800.0, "logg": 4.4}])
    # partial queries scored against the returned stars' true values

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "search")
