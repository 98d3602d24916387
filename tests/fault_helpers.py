"""What the fault-injection tests share: the tiny preset's arguments, a run's config file, the files of a folder."""

import hashlib
from pathlib import Path

import yaml

TINY = ("--configfile", "configs/tiny.yaml")


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(tmp: Path, **blocks) -> Path:
    path = tmp / f"config-{len(list(tmp.glob('config-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(blocks))
    return path


def _leftover_temporaries(folder: Path) -> list:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name]
