# Shared helpers for the rules: the library code each rule depends on, so that a change to it
# reruns the rule (Snakemake tracks inputs by modification time and, for code, by content).
from pathlib import Path


def library(*modules):
    """Source files of the given src/pipeline sub-packages or modules, as rule inputs."""
    files = []
    for m in modules:
        p = Path("src/pipeline") / m
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p.with_suffix(".py"))]
    return files
