"""SpectraFM (Koblischke & Bovy 2024): the stellar Transformer reading pixel tokens, and the
fully connected network it is compared with. Read top to bottom: config, presets, the model, the FCNN.

A spectrum is a set of pixel tokens. All pixels share one token type ("flux", id 0) and so one
value embedding  y = GELU(w_flux m + b_flux)  (eq. 1 as the published code computes it), with
m = (flux - 1) / 0.1 the pixel's depth below the continuum in units of 0.1; the wavelength encoding
of eqs. 2-3 (as the published code computes it: sin and cos pairs share a frequency) is added to
tell pixels apart. Labels (teff, logg, fe_h, o_fe, mg_fe) are ordinary tokens, ids 1..5: they can be
given as inputs and they are what the decoder is asked for. Everything else (encoder, decoder,
output head, the robust loss) is the tabular model's (model/model.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ..model.model import ModelConfig, StellarTransformer
from ..settings import from_dict
from .encoding import LAMBDA_MAX_AA, LAMBDA_MIN_AA
from .store import LABELS

PIXEL = 0  # the token id every pixel shares
FLUX_SCALE = 0.1  # pixel values fed to the embedding: (flux - 1) / FLUX_SCALE


@dataclass
class SpectraFMConfig:
    labels: tuple = LABELS
    embed_dim: int = 64
    encoder_heads: int = 4  # the published blocks (model/model.py): heads and widths halve block to block
    encoder_ffn: int = 256
    decoder_heads: int = 4
    decoder_ffn: int = 256
    dropout: float = 0.0
    activation: str = "gelu"
    context: int = 512  # pixels per forward pass; longer spectra are read by chunks and averaged
    lambda_min_aa: float = LAMBDA_MIN_AA  # eq. 3's range
    lambda_max_aa: float = LAMBDA_MAX_AA

    @property
    def vocabulary(self):
        return ("flux", *self.labels)

    def transformer(self) -> ModelConfig:
        arch = ("embed_dim", "encoder_heads", "encoder_ffn", "decoder_heads", "decoder_ffn", "dropout", "activation", "context")
        return ModelConfig(vocab_size=len(self.vocabulary), **{k: getattr(self, k) for k in arch})

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        return from_dict(
            cls, d, "spectrafm model", hint="A SpectraFM model from before the published blocks (n_heads, output_mlp) must be retrained"
        )


# small: the CPU default run; paper: the published SpectraFM (Koblischke & Bovy's config.json):
# embedding 256, 16 heads, dense 2048, halving per block, dropout 0.05 (GPU)
PRESETS = {
    "tiny": dict(embed_dim=32, encoder_heads=4, encoder_ffn=64, decoder_heads=4, decoder_ffn=64, context=64),
    # small: 4 heads of width 16 (16 heads of width 4 ran 3x slower on the CPU and learned no better) and
    # 256 pixels a pass (half the paper's: 9x the stars/s of 16 heads at 512); pre-trained at lr 5e-4 it
    # learns (validation 0.90 -> 0.18 in 16 epochs, 3 min), where 2e-3 stayed at the mean (README)
    "small": dict(embed_dim=64, encoder_heads=4, encoder_ffn=256, decoder_heads=4, decoder_ffn=256, context=256),
    "paper": dict(embed_dim=256, encoder_heads=16, encoder_ffn=2048, decoder_heads=16, decoder_ffn=2048, dropout=0.05, context=512),
}


def preset(name: str, **overrides) -> SpectraFMConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown spectrafm preset {name!r}; choose one of {sorted(PRESETS)}")
    return SpectraFMConfig(**{**PRESETS[name], **overrides})


def wavelength_encoding(wavelength_aa: torch.Tensor, d_model: int, lambda_min_aa: float, lambda_max_aa: float) -> torch.Tensor:
    """Eqs. 2-3 in torch: (..., d_model); sin on even k, cos on odd k (spectrafm/encoding.py is the NumPy reference)."""
    x = 1000.0 * (wavelength_aa.double() - lambda_min_aa) / (lambda_max_aa - lambda_min_aa)
    k = torch.arange(d_model, device=wavelength_aa.device, dtype=torch.float64)
    angle = x[..., None] / 10000.0 ** (2 * (k // 2) / d_model)  # a sin/cos pair shares a frequency
    return torch.where(k % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


class SpectraFM(StellarTransformer):
    def __init__(self, cfg: SpectraFMConfig):
        super().__init__(cfg.transformer())
        self.spec = cfg

    def label_id(self, label: str) -> int:
        return self.spec.vocabulary.index(label)

    def encode(self, ids, values, mask, wavelength_aa=None):
        """ids, values, mask, wavelength_aa: (stars, n); pixels (id 0) get the wavelength encoding added."""
        x = self.embed(ids, values, mask)
        if wavelength_aa is not None:
            pe = wavelength_encoding(torch.nan_to_num(wavelength_aa), self.cfg.embed_dim, self.spec.lambda_min_aa, self.spec.lambda_max_aa)
            x = x + pe * ((ids == PIXEL) & mask).unsqueeze(-1)
        return self.run_encoder(x, mask)

    def forward(self, ids, values, mask, request_ids, wavelength_aa=None, need_weights: bool = False):
        """Mean and log-variance (stars, requests) in standardised label units, and with
        ``need_weights`` the decoder's cross-attention on the inputs (stars, requests, blocks, n)."""
        return self.decode(self.encode(ids, values, mask, wavelength_aa), mask, request_ids, need_weights)


def pixel_tokens(flux: torch.Tensor):
    """(ids, values, mask) of pixel tokens from flux (stars, n): NaN pixels are masked out."""
    mask = torch.isfinite(flux)
    values = torch.where(mask, (flux - 1.0) / FLUX_SCALE, torch.zeros_like(flux))
    return torch.full_like(flux, PIXEL, dtype=torch.long), values, mask


def freeze(model: SpectraFM, parts) -> list[str]:
    """Stop training parts of the model: ``embedding``, ``encoder.<i>`` (negative i counts from the
    last block), ``decoder`` or ``head``. Returns the names of the frozen parameters."""
    frozen = []
    for part in parts:
        name, _, index = part.partition(".")
        if name == "encoder" and index:
            modules = [model.encoder[int(index)]]
        elif name in ("embedding", "decoder", "head", "encoder"):
            modules = [getattr(model, name)]
        else:
            raise ValueError(f"freeze: unknown part {part!r}; use embedding, encoder.<i>, decoder or head")
        for m in modules:
            for p in m.parameters():
                p.requires_grad_(False)
        frozen.append(part)
    return frozen


@dataclass
class FCNNConfig:
    n_pixels: int = 512
    hidden: tuple = (2048, 1536, 512)  # three hidden layers, ~5 M parameters with 512 pixels (the paper's)
    dropout: float = 0.1
    labels: tuple = ("fe_h",)

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "spectrafm fcnn")


class FCNN(nn.Module):
    """A fully connected network from a fixed window of pixels to labels (mean and log-variance
    each); bad pixels read as continuum."""

    def __init__(self, cfg: FCNNConfig):
        super().__init__()
        self.spec = cfg
        layers, width = [], cfg.n_pixels
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 2 * len(cfg.labels)))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, flux):
        x = torch.nan_to_num((flux - 1.0) / FLUX_SCALE, nan=0.0)
        out = self.net(x).view(flux.shape[0], -1, 2)
        return out[..., 0], out[..., 1]


def init_weights_like(model: nn.Module, state: dict):
    """Load a stage's weights into a model of the same architecture, saying what differs if not."""
    own = model.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    if bad:
        raise ValueError(
            f"the starting model's weights do not fit this architecture ({bad[:3]}); "
            "every stage must use the same spectrafm preset and model overrides"
        )
    model.load_state_dict(state)
