"""The one hash of a configuration used across the pipeline (token stores, checkpoints, MLflow tags)."""

from __future__ import annotations

import hashlib
import json


def config_hash(obj) -> str:
    """A short, stable hash of a JSON-able configuration."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
