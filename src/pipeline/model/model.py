"""The stellar Transformer of Leung & Bovy (2024), in plain PyTorch: the network of their published
code (henrysky/astroNN_stars_foundation, package ``stellarperceptron``), layer for layer.

A star is a *set* of tokens: (token type, value). Every token type x owns a learned vector w_x and
bias b_x; a value M_x is embedded non-linearly as  y_x = f(w_x * M_x + b_x)  (the code's form: the
paper's eq. 1 writes f(w_x * M_x) + b_x, but the published weights were trained with the bias inside
the activation). Row 0 of the embedding is padding (token type i of the vocabulary is row i + 1).

Every block, in the encoder and in the decoder, is one Transformer block: multi-head attention with
a learned bias key and value (``add_bias_kv``) and dropout on its weights, dropout, Add & LayerNorm,
dense -> activation -> dense, dropout, Add & LayerNorm. The encoder's two blocks attend the star's
tokens to themselves; the decoder's three take the requested type's own vector w_x as query and the
encoded star as keys and values (no self-attention of the requests: requests never mix, so r of them
are r query tokens of one pass). Heads and feed-forward widths halve from block to block. An output
MLP of four layers (decoder width, /2, /4, /8) ends in two units: the answer and its log-variance,
both in the token's standardised units. No positional encoding: order carries no meaning.

Read top to bottom: config, embedding, attention, block, the model, the loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..settings import from_dict

ENCODER_BLOCKS, DECODER_BLOCKS, MLP_LAYERS = 2, 3, 4  # the published architecture's depth
ACTIVATIONS = ("gelu", "relu", "elu", "silu", "tanh")  # torch.nn.functional names, as the published config spells them


@dataclass
class ModelConfig:
    vocab_size: int = 118  # token types (the embedding has one more row: padding)
    embed_dim: int = 128
    context: int = 64  # most input tokens per star
    encoder_heads: int = 16  # encoder block 1; block 2 has half
    encoder_ffn: int = 1024  # encoder block 1's feed-forward width; block 2 half
    decoder_heads: int = 16  # decoder blocks 1, 2, 3: this, half, a quarter
    decoder_ffn: int = 3096  # their widths likewise; the output MLP: this, /2, /4, /8
    dropout: float = 0.1  # after attention, feed-forward and MLP layers, and on the attention weights
    activation: str = "gelu"  # of the embedding, the feed-forward layers and the output MLP
    # A departure from the published network, off in every preset (``paper`` stays the published one):
    # n > 0 adds to each token's embedding a periodic encoding of its value, f(P [sin 2 pi c_x M, cos 2 pi c_x M]),
    # n learned frequencies c_x per token type (Gorishniy et al. 2022's PLR embedding), so that a value's fine
    # digits reach the blocks as a direction that LayerNorm keeps (issue 45: the model's resolution)
    value_frequencies: int = 0
    value_frequency_scale: float = 1.0  # the frequencies' initial spread (N(0, scale) cycles per standardised unit)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"model.activation: {self.activation!r} is not one of {list(ACTIVATIONS)}")
        for name, blocks in (("encoder_heads", ENCODER_BLOCKS), ("decoder_heads", DECODER_BLOCKS)):
            heads = getattr(self, name)
            for i in range(blocks):
                h = heads >> i
                if h < 1 or self.embed_dim % h:
                    raise ValueError(
                        f"model.{name}: {heads} halves to {h} heads in block {i + 1}, which must divide "
                        f"embed_dim {self.embed_dim}; use a multiple of {2 ** (blocks - 1)} that divides it"
                    )
        for name, n in (("encoder_ffn", ENCODER_BLOCKS), ("decoder_ffn", MLP_LAYERS)):
            if getattr(self, name) >> (n - 1) < 1:
                raise ValueError(f"model.{name}: {getattr(self, name)} is too small to halve {n - 1} times")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return from_dict(
            cls,
            d,
            "model",
            hint="A model folder from before the published architecture (n_heads, output_mlp) must be retrained or re-imported",
        )


# Presets: `paper` is the published network (8,845,529 parameters with the 118-token vocabulary);
# `small` (the CPU default) and `tiny` (tests) are smaller members of the same family; `medium`, between
# small and paper, is the larger size of the claims' scaling target (twice small's width).
PRESETS = {
    "tiny": dict(embed_dim=32, encoder_heads=4, encoder_ffn=64, decoder_heads=4, decoder_ffn=64, dropout=0.0),
    "small": dict(embed_dim=64, encoder_heads=4, encoder_ffn=256, decoder_heads=4, decoder_ffn=512, dropout=0.0),
    "medium": dict(embed_dim=128, encoder_heads=8, encoder_ffn=512, decoder_heads=8, decoder_ffn=1024, dropout=0.0),
    "paper": dict(embed_dim=128, encoder_heads=16, encoder_ffn=1024, decoder_heads=16, decoder_ffn=3096, dropout=0.1),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


class NonLinearEmbedding(nn.Module):
    """y_x = f(w_x * M_x + b_x), with w_x and b_x particular to the token type x; row 0 is padding (zero).
    With ``frequencies`` > 0 (a departure, ModelConfig.value_frequencies) plus f(P [sin 2 pi c_x M, cos 2 pi c_x M])."""

    def __init__(self, rows: int, dim: int, activation: str, frequencies: int = 0, frequency_scale: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(rows, dim)))
        self.bias = nn.Parameter(nn.init.xavier_uniform_(torch.empty(rows, dim)))
        with torch.no_grad():
            self.weight[0] = 0.0
            self.bias[0] = 0.0
        self.act = getattr(F, activation)
        if frequencies:
            self.frequency = nn.Parameter(torch.randn(rows, frequencies) * frequency_scale)  # c_x: (rows, k)
            self.periodic = nn.Linear(2 * frequencies, dim)  # P, shared by the token types

    def forward(self, rows, values):
        """rows (stars, n) embedding rows, values (stars, n) standardised -> (stars, n, dim).
        Rows are gathered by F.embedding, not by indexing: indexing's backward (index_put_ with
        accumulate) adds a row's gradients in a thread-dependent order on the CPU, so two trainings
        on two threads differed in the last bits and then in the answers; F.embedding's does not."""
        y = self.act(F.embedding(rows, self.weight) * values.unsqueeze(-1) + F.embedding(rows, self.bias))
        if hasattr(self, "periodic"):
            phase = 2 * math.pi * F.embedding(rows, self.frequency) * values.unsqueeze(-1)  # (stars, n, k)
            extra = self.act(self.periodic(torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)))
            y = y + extra * (rows > 0).unsqueeze(-1)  # padding stays zero
        return y

    def query(self, rows):
        """The query of a requested token type is its own vector w_x: (stars, r) -> (stars, r, dim)."""
        return F.embedding(rows, self.weight)


class Attention(nn.Module):
    """Multi-head attention as torch.nn.MultiheadAttention(add_bias_kv=True) computes it: the
    projected keys and values get one more entry each, a learned bias key and value that every
    query may attend to (so a star's answer never divides by zero), and dropout acts on the
    attention weights. Runs PyTorch's fused scaled_dot_product_attention; only when ``need_weights``
    asks for the softmax weights is the attention matrix formed explicitly."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.in_proj = nn.Linear(dim, 3 * dim)  # query, key and value projections, stacked as in MultiheadAttention
        self.bias_k = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, dim)))
        self.bias_v = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, dim)))
        self.out = nn.Linear(dim, dim)

    def forward(self, x, context, mask, need_weights: bool = False):
        """x (b, n, d) queries; context (b, m, d) keys and values; mask (b, m) True for real tokens.
        Returns (b, n, d) and, with ``need_weights``, the weights on the m tokens averaged over heads
        (b, n, m), renormalised without the bias key as the reference code reports them."""
        b, n, d = x.shape
        h = self.n_heads
        if context is x:
            q, k, v = self.in_proj(x).chunk(3, dim=-1)
        else:
            w, bias = self.in_proj.weight, self.in_proj.bias
            q = F.linear(x, w[:d], bias[:d])
            k, v = F.linear(context, w[d:], bias[d:]).chunk(2, dim=-1)
        k = torch.cat([k, self.bias_k.to(k.dtype).expand(b, 1, d)], dim=1)  # (b, m + 1, d)
        v = torch.cat([v, self.bias_v.to(v.dtype).expand(b, 1, d)], dim=1)
        q, k, v = (t.view(b, -1, h, d // h).transpose(1, 2) for t in (q, k, v))  # (b, h, ., d/h)
        m = F.pad(mask, (0, 1), value=True)[:, None, None, :]  # the bias key is always there
        p = self.dropout if self.training else 0.0
        weights = None
        if not need_weights:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p)
        else:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h))
            a = F.dropout(scores.masked_fill(~m, float("-inf")).softmax(-1), p)
            y = a @ v
            weights = a.mean(1)[..., :-1]
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)
        return self.out(y.transpose(1, 2).reshape(b, n, d)), weights


class Block(nn.Module):
    """Attention (self-attention when no memory is given, else cross-attention to it), then a
    feed-forward layer; dropout and a post-norm Add & LayerNorm after each."""

    def __init__(self, dim, n_heads, hidden, dropout, activation):
        super().__init__()
        self.attn = Attention(dim, n_heads, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn1, self.ffn2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)
        self.act = getattr(F, activation)

    def forward(self, x, mask, memory=None, need_weights: bool = False):
        """x (b, n, d); mask (b, m) over the keys (memory's, or x's own). Returns (b, n, d), weights."""
        y, w = self.attn(x, x if memory is None else memory, mask, need_weights)
        x = self.norm1(x + self.drop(y))
        x = self.norm2(x + self.drop(self.ffn2(self.act(self.ffn1(x)))))
        return x, w


class OutputHead(nn.Module):
    """Four dense layers (each activation, dropout) and two output units: value and log-variance."""

    def __init__(self, dim, width, dropout, activation):
        super().__init__()
        widths = [dim] + [width >> i for i in range(MLP_LAYERS)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.value, self.logvar = nn.Linear(widths[-1], 1), nn.Linear(widths[-1], 1)
        self.drop = nn.Dropout(dropout)
        self.act = getattr(F, activation)

    def forward(self, x):
        for layer in self.layers:
            x = self.drop(self.act(layer(x)))
        return self.value(x)[..., 0], self.logvar(x)[..., 0]


class StellarTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, act, p = cfg.embed_dim, cfg.activation, cfg.dropout
        self.embedding = NonLinearEmbedding(cfg.vocab_size + 1, d, act, cfg.value_frequencies, cfg.value_frequency_scale)
        self.encoder = nn.ModuleList(Block(d, cfg.encoder_heads >> i, cfg.encoder_ffn >> i, p, act) for i in range(ENCODER_BLOCKS))
        self.decoder = nn.ModuleList(Block(d, cfg.decoder_heads >> i, cfg.decoder_ffn >> i, p, act) for i in range(DECODER_BLOCKS))
        self.head = OutputHead(d, cfg.decoder_ffn, p, act)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @staticmethod
    def rows(ids, mask):
        """Embedding rows of vocabulary indices: index i is row i + 1, padding (mask False) row 0."""
        return torch.where(mask, ids + 1, torch.zeros_like(ids))

    def embed(self, ids, values, mask):
        """ids, values, mask: (stars, n), mask True for real tokens -> (stars, n, d); padding embeds to 0."""
        return self.embedding(self.rows(ids, mask), torch.where(mask, values, torch.zeros_like(values)))

    def run_encoder(self, x, mask):
        for block in self.encoder:
            x = block(x, mask)[0]
        return x

    def encode(self, ids, values, mask):
        """ids, values, mask: (stars, n). Returns the encoded star (stars, n, d)."""
        return self.run_encoder(self.embed(ids, values, mask), mask)

    def decode(self, memory, mask, request_ids, need_weights: bool = False):
        """Answer requests (stars, r) about encoded stars in one pass (the r queries never mix).
        Returns mean, log-variance (stars, r) and, with ``need_weights``, the cross-attention
        weights (stars, r, blocks, n)."""
        q = self.embedding.query(request_ids + 1)  # (stars, r, d)
        weights = []
        for block in self.decoder:
            q, w = block(q, mask, memory, need_weights)
            weights.append(w)
        mean, logvar = self.head(q)
        attn = torch.stack(weights, dim=2) if need_weights else None
        return mean, logvar, attn

    def forward(self, ids, values, mask, request_ids):
        mean, logvar, _ = self.decode(self.encode(ids, values, mask), mask, request_ids)
        return mean, logvar


def robust_gaussian_nll(pred, logvar, target, known_sigma, beta: float = 0.0):
    """Eq. 11: (pred - y)^2 / (2 e^s) + s/2 with s = ln(sigma_known^2 + sigma_pred^2), per element.
    ``beta`` > 0 (a departure, ``train.loss_beta``) weights each element by its variance e^s to the
    power beta, held constant in the gradient (Seitzer et al. 2022's beta-NLL): the mean's gradient
    becomes (pred - y) / e^(s (1 - beta)), so stars answered with a large sigma are still fitted."""
    s = torch.log(known_sigma.pow(2) + logvar.float().exp())
    nll = (pred.float() - target).pow(2) / (2 * s.exp()) + s / 2
    return nll if not beta else nll * (s.detach() * beta).exp()
