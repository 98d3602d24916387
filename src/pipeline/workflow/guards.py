"""What the Snakefile checks before it schedules anything: command-line values, renamed keys,
and that the user's survey files are read-only to the workflow.

Functions of plain dicts and paths, so that each guard is tested without Snakemake.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# inputs.<key> -> what it must be. A folder input protects the folder; a file input its folder.
INPUTS = {
    "allstar": "file",
    "gaia_source": "file",
    "xp_continuous": "file or folder",
    "dust_dir": "folder",
    "distmass": "file",
    "aspcapstar": "folder",
    "xp_all_gaia_source": "folder",  # catalog_all: the archive's bulk GaiaSource files
    "xp_all_xp_continuous": "folder",  # catalog_all: the archive's bulk XpContinuousMeanSpectrum files
    "train.import_from": "folder",  # a published model folder (config.json + weights.pt)
}


def _key(key: str) -> str:
    """The config key of an input: inputs.<key>, or a dotted key of its own (train.import_from)."""
    return key if "." in key else f"inputs.{key}"


RETIRED = {  # keys of earlier versions -> what became of them
    ("paths", "sky"): "was renamed to paths.mock_sky (where the mock sky is written; your survey files go in inputs.*)",
    ("train", "bucket"): "was removed: batching a pool's stars by input count taught less per epoch; "
    "train.length_groups keeps the padding down with the batch's own gradient",
    ("mass_age", "experts"): "was removed: the mass/age task compares with XGBoost on the model's two input sets "
    "(src/pipeline/evaluate/registry.py:MASS_AGE_SETS)",
}


class ConfigError(ValueError):
    """A configuration that must be fixed before anything runs; the message names the key."""


def coerce_command_line_values(config: dict, cli: dict) -> None:
    """Snakemake reads ``--config key='{a: false}'`` with YAML's base loader, so nested leaves
    arrive as strings ("false", "3"). Re-read each string leaf given on the command line as YAML
    and keep it when it is a boolean or a number; ``config`` is changed in place."""

    def walk(node, target):
        for key, value in dict(node).items():
            if hasattr(value, "items"):
                if isinstance(target.get(key), dict):
                    walk(value, target[key])
            elif isinstance(value, list):
                if isinstance(target.get(key), list):
                    target[key] = [_scalar(v) for v in target[key]]
            elif isinstance(value, str):
                target[key] = _scalar(target.get(key, value))

    walk(cli or {}, config)


def _scalar(value):
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (bool, int, float)) else value


def refuse_renamed_keys(config: dict) -> None:
    for path, what in RETIRED.items():
        node = config
        for key in path[:-1]:
            node = node.get(key) or {}
        if path[-1] in node:
            raise ConfigError(f"config: {'.'.join(path)} {what}")


def configured_inputs(config: dict) -> dict[str, Path]:
    """The user's input paths (inputs.<key> that are set, and train.import_from), absolute. mass_age's
    VAC only when used."""
    inputs = {k: v for k, v in (config.get("inputs") or {}).items() if v}
    if not (config.get("mass_age") or {}).get("enabled", False):
        inputs.pop("distmass", None)
    if (config.get("train") or {}).get("import_from"):
        inputs["train.import_from"] = config["train"]["import_from"]
    return {k: Path(v).expanduser().resolve() for k, v in inputs.items()}


def protected_folders(inputs: dict[str, Path]) -> dict[str, Path]:
    """inputs.<key> -> the folder no rule may write into: a folder input itself, a file's folder."""
    return {k: p if (p.is_dir() or INPUTS.get(k) == "folder") else p.parent for k, p in inputs.items()}


def check_inputs_exist(inputs: dict[str, Path]) -> None:
    for key, path in inputs.items():
        want = INPUTS.get(key, "file")
        if key == "dust_dir":  # mwdust's DUST_DIR: what is read is the map inside it
            path, want = path / "combined19" / "combine19.h5", "file"
        ok = {"file": path.is_file(), "folder": path.is_dir(), "file or folder": path.exists()}[want]
        if not ok:
            found = "is not a " + want if path.exists() else "does not exist"
            raise ConfigError(
                f"{_key(key)}: {path} {found}. The workflow reads your files and never makes them: "
                "fix the path, or leave the key empty to use the mock sky (mock: true)"
            )


def _written_path(pattern: str, is_directory: bool) -> tuple[Path, bool]:
    """(the fixed part of an output pattern, whether it may hold more files below it)."""
    if "{" in pattern:
        return Path(pattern[: pattern.index("{")].rsplit("/", 1)[0] or ".").resolve(), True
    return Path(pattern).resolve(), is_directory


def written_paths(rules) -> list[tuple[str, Path, bool]]:
    """(rule, path, open below) for every output, log and benchmark file of Snakemake's rules."""
    out = []
    for rule in rules:
        files = list(rule.output) + list(rule.log) + ([rule.benchmark] if getattr(rule, "benchmark", None) else [])
        for f in files:
            out.append((rule.name, *_written_path(str(f), bool(getattr(f, "is_directory", False)))))
    return out


def check_no_writes_into(protected: dict[str, Path], written: list[tuple[str, Path, bool]]) -> None:
    for rule, path, open_below in written:
        for key, folder in protected.items():
            inside = path == folder or folder in path.parents
            above = open_below and path in folder.parents
            if inside or above:
                raise ConfigError(
                    f"rule {rule} would write {path}, {'inside' if inside else 'above'} {folder}, "
                    f"which holds {_key(key)}: the workflow never writes where your files are. "
                    "Choose paths.results (and paths.mock_sky) outside your data folders"
                )


def check_inputs_read_only(config: dict, rules) -> None:
    """The Snakefile's last check: every configured input exists, and no rule writes near it."""
    inputs = configured_inputs(config)
    check_inputs_exist(inputs)
    check_no_writes_into(protected_folders(inputs), written_paths(rules))


def check_schema(config: dict, schema_path) -> None:
    """Validate against the JSON schema with a message that names the key (``train.model.embed_dim``)
    and the first error only (the workflow's one validation; the schema has no defaults: they are the
    settings dataclasses', filled in by ``configuration.with_library_defaults``)."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = ".".join(map(str, error.absolute_path)) or "(top level)"
        raise ConfigError(f"config: {where}: {error.message} (schema: {schema_path})")
