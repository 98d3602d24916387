"""The trained model as an MLflow pyfunc: a table of observed tokens in, requested tokens and sigmas out.

    model = mlflow.pyfunc.load_model("models:/stellar-transformer/1")
    model.predict(table, params={"request": ["teff", "logg", "m_h"]})

The signature lists every vocabulary token as an optional double column (physical units, NaN or
absent = not observed) and ``request`` as a parameter; the output has ``<token>`` and
``<token>_err`` for each requested token. The model folder (weights, config.json) travels as an
artifact and this package as code, so the logged model loads without the pipeline installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc

DEFAULT_REQUEST = ["teff", "logg", "m_h"]


class StellarPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from .api import StellarModel

        self.model = StellarModel.load(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        request = list((params or {}).get("request") or DEFAULT_REQUEST)
        table = pd.DataFrame(model_input)
        return self.model.predict(table, request).reset_index(drop=True)


def signature(vocabulary, request=DEFAULT_REQUEST):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("double", t, required=False) for t in vocabulary])
    outputs = Schema([ColSpec("double", c) for t in request for c in (t, f"{t}_err")])
    params = ParamSchema([ParamSpec("request", "string", list(request), shape=(-1,))])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_pyfunc(run_id: str, tracking_uri: str, model_dir, registered_name: str | None):
    """Log ``model_dir`` into ``run_id`` as a pyfunc with its signature; register it under ``registered_name``."""
    import mlflow

    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "config.json").read_text())
    mlflow.set_tracking_uri(tracking_uri)
    files = {f: str(model_dir / f) for f in ("model.pt", "config.json")}
    with mlflow.start_run(run_id=run_id):
        # only the weights and the config travel (not the checkpoints)
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for f, src in files.items():
                shutil.copy2(src, Path(tmp) / f)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=StellarPyfunc(),
                artifacts={"model_dir": tmp},
                code_paths=[str(Path(__file__).resolve().parents[1])],
                signature=signature(meta["vocabulary"]),
                registered_model_name=registered_name,
                pip_requirements=_requirements(),
                await_registration_for=0,
            )
    if registered_name and getattr(info, "registered_model_version", None):
        describe_version(tracking_uri, registered_name, str(info.registered_model_version), model_dir, meta)
    return info


ALIAS = "default-run"  # the registered version the last run of the workflow trained


def describe_version(tracking_uri: str, name: str, version: str, model_dir: Path, meta: dict):
    """The registered version's description is the model card (``model.hub``; its evaluation is the
    run's, written later: the card points there), and the alias ``default-run`` moves to it."""
    from mlflow.tracking import MlflowClient

    from .hub import WEIGHTS_TORCH, model_card, sha256

    client = MlflowClient(tracking_uri=tracking_uri)
    mock = (model_dir.resolve().parents[1] / "sky/realism.json").is_file()
    card = model_card(meta, sha256(model_dir / WEIGHTS_TORCH), None, model_dir.name, mock)
    client.update_model_version(name, version, description=card)
    client.set_registered_model_alias(name, ALIAS, version)


def _requirements():
    """The pinned runtime packages the model needs (from the installed distribution's metadata)."""
    from importlib import metadata

    wanted = {"torch", "numpy", "pandas", "mlflow"}
    try:
        reqs = metadata.requires("stellar-fm-pipeline") or []
    except metadata.PackageNotFoundError:
        return sorted(wanted)
    return sorted(r.split(";")[0].strip() for r in reqs if r.split("==")[0].split("[")[0].strip() in wanted)
