"""Every library setting of the workflow's configuration, with its default and its comment, read from
the settings dataclasses themselves (their one home): ``python -m pipeline config`` prints them and
``docs/configuration.md`` is written from them (a test keeps the file current).

``config.yaml`` holds the workflow's own settings (mock, paths, inputs, names, branches, devices) and,
of these, only the default run's values that differ from the defaults, each with its reason (a test);
``with_library_defaults`` completes a run's configuration from the dataclasses when the workflow parses
it. The schema (``workflow/schemas/config.schema.yaml``) names the same keys as these dataclasses (a test).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize

from .settings import field_default, plain


def blocks() -> dict:
    """Config block -> the settings dataclass that reads it (the mock sky's ``sky`` block is described
    in config.yaml and docs/mock-sky.md: real-data code, this module included, never imports sky/)."""
    from .apply.catalogue import CatalogAllConfig
    from .baselines.xgb import ExpertConfig
    from .catalog.build import CatalogConfig
    from .model.settings import TrainConfig
    from .search.settings import SearchConfig
    from .vac.mass_age import MassAgeCuts

    return {
        "catalog": CatalogConfig,
        "train": TrainConfig,
        "mass_age.train": TrainConfig,
        "mass_age.cuts": MassAgeCuts,
        "catalog_all": CatalogAllConfig,
        "search": SearchConfig,
        "baselines.xgboost": ExpertConfig,
    }


# The blocks a run's configuration is completed from (mass_age.train is not: it overlays train).
FILLED = ("catalog", "train", "mass_age.cuts", "catalog_all", "search", "baselines.xgboost")


def completed(given: dict, cls) -> dict:
    """``given`` with every field of ``cls`` it leaves out set to the field's default (nested settings too)."""
    out = {}
    for f in dataclasses.fields(cls):
        default = field_default(f)
        if f.name in given and dataclasses.is_dataclass(default) and isinstance(given[f.name], dict):
            out[f.name] = completed(given[f.name], type(default))
        else:
            out[f.name] = given[f.name] if f.name in given else plain(default)
    return {**out, **{k: v for k, v in given.items() if k not in out}}


def with_library_defaults(config: dict) -> dict:
    """Complete a validated configuration with the settings dataclasses' defaults, once, when the
    workflow parses it: ``config.yaml`` then holds only the values that differ from them, and every
    rule reads a complete block (no rule or script repeats a default). Changes ``config`` in place."""
    found = blocks()
    for block in FILLED:
        *parents, leaf = block.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = completed(node.get(leaf) or {}, found[block])
    from .evaluate.settings import Shared  # the tasks' shared settings; each task's own block is completed by task_settings

    config["evaluate"] = {**completed({}, Shared), **(config.get("evaluate") or {})}
    return config


def field_comments(cls) -> dict[str, str]:
    """The comment after each field of a dataclass's source (and the comment lines that follow it)."""
    source = inspect.getsource(cls)
    comments: dict[str, str] = {}
    current = None
    names = {f.name for f in dataclasses.fields(cls)}
    line_field = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in names and tok.start[0] not in line_field:
            line_field[tok.start[0]] = tok.string
            current = tok.string
        elif tok.type == tokenize.COMMENT and current:
            text = tok.string.lstrip("#").strip()
            if tok.start[0] in line_field or tok.start[1] == 4:
                comments[current] = f"{comments.get(current, '')} {text}".strip()
        elif tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in ("def", "class", "@"):
            current = None
    return comments


def schema_descriptions() -> dict[str, dict[str, str]]:
    """Block -> {key: the schema's description} (the checkout's workflow/schemas; empty when absent)."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"
    if not path.is_file():
        return {}
    schema = yaml.safe_load(path.read_text())
    defs = schema.get("$defs", {})

    def props(node):
        out = dict(node.get("properties", {}))
        if "$ref" in node:
            out = {**props(defs[node["$ref"].split("/")[-1]]), **out}
        return out

    found = {}
    for block in blocks():
        node = schema["properties"]
        for part in block.split("."):
            node = props(node)[part] if part in props(node) else node.get("properties", {}).get(part, {})
        found[block] = {k: v.get("description", "") for k, v in props(node).items() if isinstance(v, dict)}
    return found


def config_comments() -> dict[str, str]:
    """Dotted key -> the comment beside it in the checkout's config.yaml (and its continuation lines)."""
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "config.yaml"
    if not path.is_file():
        return {}
    found, stack, last = {}, [], None
    for line in path.read_text().splitlines():
        m = re.match(r"^(\s*)([A-Za-z_][\w]*):(.*)$", line)
        if m:
            indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
            last = ".".join(k for _, k in stack)
            if "#" in rest:
                found[last] = rest.split("#", 1)[1].strip()
            continue
        c = re.match(r"^\s+#\s?(.*)$", line)
        if c and last and last in found:
            found[last] += " " + c.group(1).strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            last = None
    return found


def _default(f) -> str:
    value = field_default(f)
    return "(required)" if value is dataclasses.MISSING else repr(plain(value) if dataclasses.is_dataclass(value) else value)


def settings_table(markdown: bool = True) -> str:
    """Every block's settings: name, default, comment (Markdown tables, or plain text)."""
    out = []
    described, commented = schema_descriptions(), config_comments()
    for block, cls in blocks().items():
        notes = {f.name: commented.get(f"{block}.{f.name}", "") for f in dataclasses.fields(cls)}
        notes.update({k: v for k, v in described.get(block, {}).items() if v})
        notes.update({k: v for k, v in field_comments(cls).items() if v})
        out.append(f"## {block}\n\n`{cls.__module__}.{cls.__name__}`\n" if markdown else f"[{block}]  ({cls.__module__}.{cls.__name__})")
        if markdown:
            out.append("| setting | default | what it does |\n|---|---|---|")
        for f in dataclasses.fields(cls):
            note = notes.get(f.name, "")
            default = _default(f)
            out.append(f"| `{f.name}` | `{default}` | {note.replace('|', '/')} |" if markdown else f"  {f.name} = {default}    # {note}")
        out.append("")
    return "\n".join(out)


def configuration_doc() -> str:
    head = (
        "# Configuration: every library setting, its default and what it does\n\n"
        "Written by `python -m pipeline config --markdown` from the settings dataclasses (their one home; a test keeps\n"
        "this file current), with the comments of the dataclasses, the schema and `config.yaml`. `config.yaml` sets the\n"
        "workflow's own settings (mock, paths, inputs, names, branches, devices) and only those of the default run's\n"
        "values that differ from these defaults; `configs/*.yaml` layer on top; the schema checks every key, once,\n"
        "and the workflow then completes each block below from these defaults.\n\n"
    )
    return head + settings_table(markdown=True)
