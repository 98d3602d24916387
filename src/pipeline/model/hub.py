"""A model folder others can load: ``config.json``, ``model.safetensors`` (no pickle: loading never
runs code from the folder) and ``README.md``, a model card in the Hugging Face Hub's convention
(YAML front matter; what the model was trained on, how well it does, where it must not be used;
the weights' SHA-256). ``StellarModel.load`` and every command load such a folder as they load
the train rule's (``model.pt`` + ``config.json``); ``load_state`` reads either.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

WEIGHTS_SAFETENSORS, WEIGHTS_TORCH = "model.safetensors", "model.pt"


def load_state(model_dir) -> dict:
    """The network's weights of a model folder: ``model.safetensors`` if present, else ``model.pt``
    (read with ``weights_only``: tensors, never arbitrary objects)."""
    d = Path(model_dir)
    if (d / WEIGHTS_SAFETENSORS).is_file():
        from safetensors.torch import load_file

        return load_file(str(d / WEIGHTS_SAFETENSORS))
    return torch.load(d / WEIGHTS_TORCH, map_location="cpu", weights_only=True)


def has_weights(model_dir) -> bool:
    d = Path(model_dir)
    return (d / WEIGHTS_SAFETENSORS).is_file() or (d / WEIGHTS_TORCH).is_file()


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


NO_FINDINGS = "Not in this card: the evaluation of the run is in `<results>/eval/claims.csv` and `summary.csv` (the workflow's evaluation writes them).\n"


def model_card(meta: dict, weights_sha256: str, findings: str | None, name: str, mock: bool | None) -> str:
    """README.md of an exported model: front matter, then what, how trained, how well, limits."""
    m, train = meta["model"], meta.get("train") or {}
    settings = ", ".join(f"{k} {v}" for k, v in train.items() if not isinstance(v, (dict, list)))
    data = (
        "the pipeline's **mock sky** (a known generator in the surveys' formats), not the real sky: its numbers say what "
        "the method does on the mock, not how it does on real stars"
        if mock
        else "the token store named by its hash below (built by the pipeline's catalog stage from the configured survey files)"
    )
    return f"""---
license: bsd-3-clause
library_name: pytorch
tags:
- astronomy
- stellar-parameters
- gaia
- apogee
- transformer
- foundation-model
---

# {name}

A stellar foundation model in the architecture of Leung & Bovy (2024), trained by the pipeline
of this repository: give it any subset of a star's {len(meta["vocabulary"])} tokens (Gaia XP
coefficients, photometry, parallax-based luminosity, extinction, APOGEE parameters; at most
{m["context"]} at a time) and ask for any others; it answers with a value and a 1-sigma
uncertainty.

## Loading

```python
from pipeline.model.api import StellarModel
model = StellarModel.load("{name}")          # reads model.safetensors: no pickle, no code from the folder
answers = model.predict(table, ["teff", "logg", "m_h"])
```

or `python -m pipeline predict --model {name} ...` / `python -m pipeline apply --model {name} ...`.

## Training

- Trained on {data}; token store config hash `{meta.get("token_store_config_hash", "?")}`.
- Network: {", ".join(f"{k} {v}" for k, v in m.items())}; {meta.get("n_parameters", "?")} parameters.
- Settings: {settings or "(not recorded)"}.
- Weights: `model.safetensors`, SHA-256 `{weights_sha256}`.

## Evaluation (held-out stars, 95% bootstrap intervals)

{findings or NO_FINDINGS}
## Intended use and limitations

- Stars like the training stars: the catalog's cuts (XP quality, parallax, the magnitude and colour
  ranges of the training catalogue); `python -m pipeline apply` flags sources outside that domain.
- A model trained on the mock sky is a test of the method and the code, not a tool for real stars.
- The uncertainty is the model's predictive sigma; it does not include systematics of the labels it
  was trained on (ASPCAP's, the mass/age catalogue's).
"""


FIGURE = "claims.png"  # the run's forest plot of every claim, beside the card


def export_hub(model_dir, out, results=None, mock: bool | None = None, findings: str | None = None, figure=None) -> Path:
    """Write ``out`` (config.json, model.safetensors, README.md) from a model folder; ``results``:
    the run it belongs to (default: the folder two levels up); ``findings``: the run's findings table
    in Markdown for the card (the caller's, evaluate.findings: the model layer does not read them);
    ``figure``: the run's forest plot of the claims (a PNG), copied beside the card as claims.png and
    shown at the top of its evaluation."""
    from safetensors.torch import save_file

    from .lb23 import write_model_folder

    src = Path(model_dir)
    if not (src / "config.json").is_file() or not has_weights(src):
        raise FileNotFoundError(f"{src}: not a model folder (needs config.json and model.pt or model.safetensors)")
    meta = json.loads((src / "config.json").read_text())
    results = Path(results) if results else src.resolve().parents[1]
    if mock is None:  # the mock's sky reports exist only in a run on the mock
        mock = (results / "sky/realism.json").is_file()
    state = {k: v.detach().cpu().contiguous() for k, v in load_state(src).items()}
    out = Path(out)

    def weights(path):
        save_file(state, str(path), metadata={"format": "pt"})

    files = {WEIGHTS_SAFETENSORS: weights}
    if figure is not None and Path(figure).is_file():
        findings = f"![every claim against its line]({FIGURE})\n\n{findings or ''}"
        files[FIGURE] = lambda p: shutil.copyfile(figure, p)

    def card(path):
        Path(path).write_text(model_card(meta, sha256(out / WEIGHTS_SAFETENSORS), findings, out.name, mock))

    # each file whole or not at all, config.json last (a folder without it is not a model)
    files.update({"README.md": card, "config.json": lambda p: shutil.copyfile(src / "config.json", p)})
    write_model_folder(out, files)
    return out
