"""The published model format of Leung & Bovy's code (henrysky/astroNN_stars_foundation), both ways.

A model folder of theirs holds ``config.json`` (``nn_config``: the architecture; ``tokenizer_config``:
``vocabs`` and their ids ``vocab_tokens``, 1..V, 0 being padding; ``norm_config``: ``_input_mean``,
``_input_std``, ``_input_standardized`` indexed by token id) and ``weights.pt`` (a torch.save of a
dict whose ``model_state_dict`` is their network's state dict). ``import_lb23`` turns one into a
model folder of ours (``model.pt``, ``config.json``), ``export_lb23`` the reverse; the network is
the same (model/model.py), so only names, the order of the embedding rows and the layout of the
standardisation change.

    python -m pipeline import-lb23 model_torch/ results/models/published
    python -m pipeline export-lb23 results/models/small/ small_lb23/
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from ..io.atomic import atomic_path
from .model import ModelConfig, StellarTransformer

FORMAT = "stellar-transformer/1"

# nn_config key -> ModelConfig field; the activations and dropout rates each map to one field,
# so the published config must give the same value to all of them
NN_CONFIG = {
    "context_length": "context",
    "embedding_dim": "embed_dim",
    "encoder_head_num": "encoder_heads",
    "encoder_dense_num": "encoder_ffn",
    "decoder_head_num": "decoder_heads",
    "decoder_dense_num": "decoder_ffn",
}
SHARED = {
    "activation": ("embedding_activation", "encoder_activation", "decoder_activation"),
    "dropout": ("encoder_dropout_rate", "decoder_dropout_rate"),
}
BACKEND_KEYS = ("backend_framewoark", "backend_framework")  # the reference code's spelling, and SpectraFM's

# our state-dict names -> theirs, applied in order
_KEYS = [
    (r"^embedding\.weight$", "embedding_layer.embeddings"),
    (r"^embedding\.bias$", "embedding_layer.bias"),
    (r"^encoder\.(\d+)\.", lambda m: f"torch_encoder.encoder_transformer_block_{int(m[1]) + 1}."),
    (r"^decoder\.(\d+)\.", lambda m: f"torch_decoder.decoder_transformer_block_{int(m[1]) + 1}."),
    (r"^head\.layers\.(\d+)\.", lambda m: f"torch_decoder.decoder_dense_{int(m[1]) + 3}."),
    (r"^head\.value\.", "torch_decoder.decoder_out."),
    (r"^head\.logvar\.", "torch_decoder.decoder_logvar_out."),
    (r"\.attn\.in_proj\.(weight|bias)$", r".attention.in_proj_\1"),
    (r"\.attn\.(bias_[kv])$", r".attention.\1"),
    (r"\.attn\.out\.", ".attention.out_proj."),
    (r"\.ffn([12])\.", r".dense_\1."),
    (r"\.norm([12])\.", r".layernorm_\1."),
]


def lb23_key(ours: str) -> str:
    """The reference code's name of one of our state-dict entries."""
    for pattern, repl in _KEYS:
        ours = re.sub(pattern, repl, ours)
    return ours


class LB23FormatError(ValueError):
    """A folder that is not a model of the reference code's format we can express."""


def _config(src: Path) -> dict:
    path = src / "config.json"
    if not path.is_file():
        raise LB23FormatError(f"{path}: missing; a model folder of the reference code holds config.json and weights.pt")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LB23FormatError(f"{path}: not valid JSON ({e})") from None
    for section in ("nn_config", "tokenizer_config", "norm_config"):
        if not isinstance(cfg.get(section), dict):
            raise LB23FormatError(f"{path}: no {section} section (keys: {sorted(cfg)})")
    return cfg


def model_config(nn_config: dict, vocab_size: int, where: str = "config.json") -> ModelConfig:
    """Our ModelConfig of a published ``nn_config``; an unknown or missing key, or settings our
    network cannot express (different activations or dropout rates per part), name the key."""
    known = set(NN_CONFIG) | {k for ks in SHARED.values() for k in ks} | set(BACKEND_KEYS)
    unknown = sorted(set(nn_config) - known)
    if unknown:
        raise LB23FormatError(f"{where}: nn_config has unknown key(s) {unknown}; known: {sorted(known)}")
    missing = sorted(k for k in known - set(BACKEND_KEYS) if k not in nn_config)
    if missing:
        raise LB23FormatError(f"{where}: nn_config lacks {missing}")
    backend = next((nn_config[k] for k in BACKEND_KEYS if k in nn_config), "torch")
    if "torch" not in str(backend):
        raise LB23FormatError(f"{where}: nn_config.backend_framewoark is {backend!r}; only the PyTorch version's weights can be read")
    fields = {ours: nn_config[theirs] for theirs, ours in NN_CONFIG.items()}
    for ours, keys in SHARED.items():
        values = {k: nn_config[k] if nn_config[k] is not None else "relu" for k in keys}  # None is relu in their code
        if len(set(values.values())) > 1:
            raise LB23FormatError(f"{where}: nn_config gives {values}; this network has one {ours} for all its parts")
        fields[ours] = next(iter(values.values()))
    try:
        return ModelConfig(vocab_size=vocab_size, **fields)
    except (TypeError, ValueError) as e:
        raise LB23FormatError(f"{where}: nn_config cannot be expressed: {e}") from None


def _vocabulary(cfg: dict, where: str):
    tok = cfg["tokenizer_config"]
    for key in ("vocabs", "vocab_tokens"):
        if not isinstance(tok.get(key), list):
            raise LB23FormatError(f"{where}: tokenizer_config.{key} is missing or not a list")
    vocab, ids = [str(v) for v in tok["vocabs"]], [int(i) for i in tok["vocab_tokens"]]
    if len(vocab) != len(ids) or len(set(vocab)) != len(vocab) or sorted(ids) != list(range(1, len(vocab) + 1)):
        raise LB23FormatError(
            f"{where}: tokenizer_config: {len(vocab)} vocabs ({len(set(vocab))} distinct) with "
            f"vocab_tokens {ids[:5]}...; the ids must be 1..{len(vocab)}, one per name"
        )
    return vocab, ids


def _standardisation(cfg: dict, vocab, ids, where: str):
    norm = cfg["norm_config"]
    out = []
    for key in ("_input_mean", "_input_std", "_input_standardized"):
        values = norm.get(key)
        if not isinstance(values, list) or len(values) != len(vocab) + 1:
            n = len(values) if isinstance(values, list) else "no"
            raise LB23FormatError(f"{where}: norm_config.{key} has {n} entries; the vocabulary needs {len(vocab) + 1} (index 0: padding)")
        out.append([values[i] for i in ids])
    mean, std, done = out
    unset = [t for t, ok in zip(vocab, done) if not ok]
    if unset:  # their code would standardise those tokens by the stars it is given: not a fixed model
        raise LB23FormatError(f"{where}: norm_config._input_standardized is false for {unset[:5]}; their standardisation is unknown")
    bad = [t for t, s in zip(vocab, std) if not (s and s > 0)]
    if bad:
        raise LB23FormatError(f"{where}: norm_config._input_std is not positive for {bad[:5]}")
    return [float(m) for m in mean], [float(s) for s in std]


def _load_weights(path: Path) -> dict:
    if not path.is_file():
        raise LB23FormatError(f"{path}: missing; a model folder of the reference code holds config.json and weights.pt")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        raise LB23FormatError(f"{path}: not a torch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or "model_state_dict" not in obj:
        raise LB23FormatError(f"{path}: no model_state_dict (keys: {sorted(obj) if isinstance(obj, dict) else type(obj).__name__})")
    return obj["model_state_dict"]


def read_lb23(src):
    """(ModelConfig, our state dict, vocabulary, median, mad_std) of a folder in the published format."""
    src = Path(src)
    cfg = _config(src)
    where = str(src / "config.json")
    vocab, ids = _vocabulary(cfg, where)
    median, mad = _standardisation(cfg, vocab, ids, where)
    model_cfg = model_config(cfg["nn_config"], len(vocab), where)
    theirs = _load_weights(src / "weights.pt")
    net = StellarTransformer(model_cfg)
    ours = net.state_dict()
    names = {k: lb23_key(k) for k in ours}
    missing = sorted(v for v in names.values() if v not in theirs)
    extra = sorted(set(theirs) - set(names.values()))
    if missing or extra:
        raise LB23FormatError(
            f"{src / 'weights.pt'}: model_state_dict does not fit the nn_config of {where}: missing {missing[:4]}, unexpected {extra[:4]}"
        )
    rows = torch.tensor([0] + ids)  # our row j + 1 holds their token ids[j]
    state = {}
    for k, v in ours.items():
        t = theirs[names[k]]
        if k.startswith("embedding."):
            if t.shape[0] != len(vocab) + 1:
                raise LB23FormatError(
                    f"{src / 'weights.pt'}: {names[k]} has {t.shape[0]} rows; the vocabulary of "
                    f"{where} has {len(vocab)} tokens (+1 padding)"
                )
            t = t[rows]
        if t.shape != v.shape:
            raise LB23FormatError(
                f"{src / 'weights.pt'}: {names[k]} has shape {tuple(t.shape)}; the nn_config of {where} implies {tuple(v.shape)}"
            )
        state[k] = t.to(v.dtype).contiguous()
    return model_cfg, state, vocab, median, mad


def write_model_folder(out: Path, files):
    """Write a model folder's files, each atomically and config.json last (a folder without it is
    not a model); files of a model already there are not overwritten."""
    out = Path(out)
    there = [name for name in files if (out / name).exists()]
    if there:
        raise FileExistsError(f"{out}: already holds {there}; remove them or give another folder")
    out.mkdir(parents=True, exist_ok=True)
    for name, write in files.items():
        with atomic_path(out / name) as tmp:
            write(tmp)


def import_lb23(src, out) -> dict:
    """A folder of the published format -> a model folder of ours that every stage takes. Returns its config."""
    src = Path(src)
    model_cfg, state, vocab, median, mad = read_lb23(src)
    net = StellarTransformer(model_cfg)
    net.load_state_dict(state)
    meta = {
        "format": FORMAT,
        "model": model_cfg.to_dict(),
        "vocabulary": vocab,
        "median": median,
        "mad_std": mad,
        "held_out_outputs": [],
        "n_parameters": net.n_parameters(),
        "imported_from": {
            "path": str(src.resolve()),
            "format": "lb23",
            "weights_sha256": hashlib.sha256((src / "weights.pt").read_bytes()).hexdigest(),
        },
    }
    write_model_folder(out, {"model.pt": lambda p: torch.save(state, p), "config.json": lambda p: p.write_text(json.dumps(meta, indent=1))})
    return meta


def export_lb23(src, out) -> dict:
    """A model folder of ours -> the published format, loadable by ``StellarPerceptron.load``. Returns its config.json."""
    src = Path(src)
    if not (src / "config.json").is_file() or not (src / "model.pt").is_file():
        raise FileNotFoundError(f"{src}: not a model folder (needs config.json and model.pt)")
    meta = json.loads((src / "config.json").read_text())
    model_cfg = ModelConfig.from_dict(meta["model"])
    state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)
    vocab = list(meta["vocabulary"])
    n = len(vocab)
    if model_cfg.vocab_size != n:
        raise LB23FormatError(f"{src / 'config.json'}: vocabulary of {n} tokens but model.vocab_size {model_cfg.vocab_size}")
    if model_cfg.value_frequencies:
        raise LB23FormatError(
            f"{src / 'config.json'}: model.value_frequencies {model_cfg.value_frequencies}: the published format has no periodic "
            "value encoding (a departure of ours); export this model with --format hub"
        )
    nn_config = {
        "backend_framewoark": f"torch-{torch.__version__[:5]}",
        **{theirs: getattr(model_cfg, ours) for theirs, ours in NN_CONFIG.items()},
        **{k: getattr(model_cfg, ours) for ours, keys in SHARED.items() for k in keys},
    }
    config = {
        "nn_config": nn_config,
        "tokenizer_config": {"vocabs": vocab, "vocab_tokens": list(range(1, n + 1))},
        "norm_config": {
            "_input_mean": [0.0] + [float(x) for x in meta["median"]],
            "_input_std": [1.0] + [float(x) for x in meta["mad_std"]],
            "_input_standardized": [False] + [True] * n,
        },
    }
    theirs = {lb23_key(k): v.detach().cpu().contiguous() for k, v in state.items()}
    write_model_folder(
        out,
        {
            "weights.pt": lambda p: torch.save({"model_state_dict": theirs, "epoch": None}, p),
            "config.json": lambda p: p.write_text(json.dumps(config, indent=4)),
        },
    )
    return config
