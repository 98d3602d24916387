"""Settings dataclasses from plain dicts (config blocks, config.json files): the one ``from_dict``.

Each setting has its default in its dataclass field; the workflow's JSON schema checks types and
ranges but sets no defaults of its own, so a setting left out of ``config.yaml`` takes the
dataclass's value. Unknown keys are an error naming the key and where it was found; lists become
tuples where the default is a tuple; nested dataclasses are built the same way; dict-valued
settings are merged over their defaults (a block that sets one column keeps the others).
"""

from __future__ import annotations

import dataclasses
import typing


def field_default(f: dataclasses.Field):
    """A dataclass field's default (its factory called), or ``dataclasses.MISSING`` for a required one."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING


def plain(value):
    """A setting as a configuration or a JSON file holds it: dataclasses as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def from_dict(cls, d: dict | None, where: str | None = None, ignore=(), hint: str = ""):
    """``cls(**d)`` for a dataclass ``cls``, checked and converted as the module docstring says."""
    d = {k: v for k, v in dict(d or {}).items() if k not in ignore}
    where = where or cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}{'. ' + hint if hint else ''}")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in d.items():
        f = fields[name]
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        kind = hints.get(name)
        if dataclasses.is_dataclass(kind) and value is None:
            continue  # a nested block left empty: its defaults
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = from_dict(kind, value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        out[name] = value
    return cls(**out)


def keywords(fn, d: dict | None, where: str, ignore=()) -> dict:
    """A config block as keyword arguments of ``fn``, for a step whose few settings have their
    defaults in its signature: only the keys given are passed, so the signature stays the one
    place of each default; a key that is not one of ``fn``'s settings is an error naming it and
    ``where``."""
    import inspect

    known = [n for n, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty]
    d = {k: v for k, v in dict(d or {}).items() if k not in ignore}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(set(known) | set(ignore))}")
    return d
