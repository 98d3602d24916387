# Shared helpers for the workflow files.
from pathlib import Path


def library(*modules):
    """Source files of src/pipeline sub-packages or modules. Listed as inputs, so that changing
    the code a step runs reruns that step."""
    files = []
    for m in modules:
        p = Path("src/pipeline") / m
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p.with_suffix(".py"))]
    return files


def raw_input(key, mock_default):
    """A raw input file from config['inputs'], or the mock sky's file when it is left empty."""
    value = (config.get("inputs") or {}).get(key) or ""
    if value:
        return value
    if not MOCK:
        raise ValueError(f"config: inputs.{key} must point at your file when mock is false")
    return mock_default


def mock_only(*paths):
    return list(paths) if MOCK else []
