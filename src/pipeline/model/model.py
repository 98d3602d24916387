"""The stellar Transformer of Leung & Bovy (2024), in plain PyTorch.

A star is a *set* of tokens: (token type, value). Every token type x owns a learned vector
w_x and bias b_x; a value M_x is embedded non-linearly as  y_x = GELU(w_x * M_x) + b_x  (eq. 1).
The encoder runs self-attention blocks over the set (no positional encoding: order carries no
meaning; padding is masked). To ask a question, the decoder takes the requested type's own
vector w_x as its query and runs cross-attention blocks from it to the encoded star. An output
MLP turns the result into a value and a log-variance: the answer and its uncertainty, both in
the token's standardised units.

Read top to bottom: config, embedding, blocks, the model, the loss.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int = 118
    embed_dim: int = 128
    context: int = 64
    n_heads: int = 16
    encoder_ffn: tuple = (1024, 512)  # one encoder block per entry: its feed-forward width
    decoder_ffn: tuple = (3096, 1548, 774)  # one decoder block per entry
    output_mlp: tuple = (3096, 1548, 774)
    dropout: float = 0.1

    def to_dict(self):
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for k in ("encoder_ffn", "decoder_ffn", "output_mlp"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# Presets: `paper` is the published architecture (~8.8 M parameters with the 118-token vocabulary).
PRESETS = {
    "tiny": dict(embed_dim=32, n_heads=4, encoder_ffn=(64, 64), decoder_ffn=(64,), output_mlp=(64,), dropout=0.0),
    "small": dict(embed_dim=64, n_heads=4, encoder_ffn=(128, 128), decoder_ffn=(256,), output_mlp=(256, 128), dropout=0.0),
    "paper": dict(embed_dim=128, n_heads=16, encoder_ffn=(1024, 512), decoder_ffn=(3096, 1548, 774), output_mlp=(3096, 1548, 774), dropout=0.1),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


class NonLinearEmbedding(nn.Module):
    """y_x = GELU(w_x * M_x) + b_x, with w_x and b_x particular to the token type x (eq. 1)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, dim) / math.sqrt(dim))
        self.bias = nn.Parameter(torch.zeros(vocab_size, dim))

    def forward(self, ids, values):
        return F.gelu(self.weight[ids] * values.unsqueeze(-1)) + self.bias[ids]

    def request(self, ids):
        """The query for a requested token type is its own embedding vector w_x."""
        return self.weight[ids]


class Attention(nn.Module):
    """Multi-head attention. ``mask`` is True where a key may be attended to (False = padding).

    It runs PyTorch's fused scaled_dot_product_attention (flash / memory-efficient kernels on
    CUDA, a flash kernel on the CPU); only when ``need_weights`` asks for the softmax weights
    (returned averaged over heads) is the attention matrix formed explicitly. As in the paper,
    dropout acts on the dense layers, not on the attention weights.
    """

    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        assert dim % n_heads == 0, f"embed_dim {dim} must be divisible by n_heads {n_heads}"
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, context, mask, need_weights: bool = False):
        b, n, d = x.shape
        h = self.n_heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        m = mask[:, None, None, :]
        weights = None
        if not need_weights:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        else:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h))
            w = scores.masked_fill(~m, float("-inf")).softmax(-1)
            y = w @ v
            if need_weights:
                weights = w.mean(1)
        return self.out(y.transpose(1, 2).reshape(b, n, d)), weights


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    """Self-attention over the star's tokens, then a feed-forward layer; Add & Norm after each."""

    def __init__(self, dim, n_heads, hidden, dropout):
        super().__init__()
        self.attn = Attention(dim, n_heads)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, x, mask):
        x = self.norm1(x + self.attn(x, x, mask)[0])
        return self.norm2(x + self.ffn(x))


class DecoderBlock(nn.Module):
    """A Transformer decoder block for one request: self-attention of the request (a single token,
    so it mixes nothing between requests), cross-attention to the encoded star, feed-forward."""

    def __init__(self, dim, n_heads, hidden, dropout):
        super().__init__()
        self.self_attn = Attention(dim, n_heads)
        self.cross_attn = Attention(dim, n_heads)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, q, memory, mask, need_weights=False):
        one = torch.ones(q.shape[0], 1, dtype=torch.bool, device=q.device)
        q = self.norm1(q + self.self_attn(q, q, one)[0])
        y, w = self.cross_attn(q, memory, mask, need_weights)
        q = self.norm2(q + y)
        return self.norm3(q + self.ffn(q)), w


class StellarTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.embedding = NonLinearEmbedding(cfg.vocab_size, d)
        self.encoder = nn.ModuleList(EncoderBlock(d, cfg.n_heads, h, cfg.dropout) for h in cfg.encoder_ffn)
        self.decoder = nn.ModuleList(DecoderBlock(d, cfg.n_heads, h, cfg.dropout) for h in cfg.decoder_ffn)
        layers, width = [], d
        for h in cfg.output_mlp:
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, 2))  # value and log-variance

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def encode(self, ids, values, mask):
        """ids, values, mask: (stars, n) with mask True for real tokens. Returns (stars, n, d)."""
        x = self.embedding(ids, torch.where(mask, values, torch.zeros_like(values)))
        for block in self.encoder:
            x = block(x, mask)
        return x

    def decode(self, memory, mask, request_ids, need_weights: bool = False):
        """Answer requests (stars, r) about encoded stars. Returns mean, log-variance (stars, r)
        and, with ``need_weights``, cross-attention weights (stars, r, blocks, n)."""
        b, r = request_ids.shape
        n = memory.shape[1]
        # each request is decoded on its own: fold requests into the batch
        q = self.embedding.request(request_ids).reshape(b * r, 1, -1)
        mem = memory.repeat_interleave(r, dim=0) if r > 1 else memory
        msk = mask.repeat_interleave(r, dim=0) if r > 1 else mask
        weights = []
        for block in self.decoder:
            q, w = block(q, mem, msk, need_weights)
            if need_weights:
                weights.append(w.reshape(b, r, n))
        out = self.head(q.squeeze(1)).reshape(b, r, 2)
        attn = torch.stack(weights, dim=2) if need_weights else None
        return out[..., 0], out[..., 1], attn

    def forward(self, ids, values, mask, request_ids):
        mean, logvar, _ = self.decode(self.encode(ids, values, mask), mask, request_ids)
        return mean, logvar


def robust_gaussian_nll(pred, logvar, target, known_sigma):
    """Eq. 11: (pred - y)^2 / (2 e^s) + s/2 with s = ln(sigma_known^2 + sigma_pred^2), per element."""
    s = torch.log(known_sigma.pow(2) + logvar.float().exp())
    return (pred.float() - target).pow(2) / (2 * s.exp()) + s / 2
