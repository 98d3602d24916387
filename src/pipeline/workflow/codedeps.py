"""Which source files a step runs: the closure of a script's imports within this package.

The workflow lists these files as a rule's inputs (``code_of`` in workflow/rules/common.smk), so
that an edit of any module a rule's script reaches, directly or through other modules (also
imports inside functions, which run when called), reruns that rule, and an edit elsewhere does
not. Read from the sources with ``ast``; nothing is imported. Standard library only.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "pipeline"
# Plumbing: how a job is tracked and logged, not what it computes. A script's imports of these do
# not make them its code (an edit of the MLflow logging reruns nothing); science code never imports them.
PLUMBING = ("pipeline.workflow.tracking", "pipeline.workflow.jobs", "pipeline.workflow.logs", "pipeline.model.mlflow_model")


def _module_file(src: Path, module: str) -> Path | None:
    """The file of a dotted module name of this package (a module or a package's __init__)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = src.joinpath(*parts)
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _module_name(src: Path, path: Path) -> str:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported_modules(src: Path, path: Path) -> set[str]:
    """Dotted names of this package's modules that ``path`` imports anywhere in its body (each file
    parsed once per process while it is unchanged: every rule's closure shares the modules)."""
    st = Path(path).stat()
    return set(_parsed_imports(str(src), str(path), st.st_mtime_ns, st.st_size))


@cache
def _parsed_imports(src: str, file: str, mtime_ns: int, size: int) -> frozenset[str]:
    src, path = Path(src), Path(file)
    name = _module_name(src, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # `from pkg import module`
    return frozenset(m for m in found if m.split(".")[0] == PACKAGE)


@cache
def _closure(src: str, start: tuple[str, ...]) -> tuple[str, ...]:
    root = Path(src)
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module.startswith(PLUMBING):
            continue
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # a module's packages run their __init__ first
            f = _module_file(root, ".".join(parts[:i]))
            if f is not None and f not in seen:
                seen.add(f)
                todo.extend(_imported_modules(root, f))
    return tuple(sorted(str(f) for f in seen))


def code_of(script, src="src") -> list[str]:
    """Source files of this package (under ``src``, the folder holding ``pipeline/``) that
    ``script`` (a workflow script or any Python file) runs, sorted."""
    script, src = Path(script), Path(src)
    names = set()
    for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    start = tuple(sorted(n for n in names if n.split(".")[0] == PACKAGE and not n.startswith(PLUMBING)))
    return list(_closure(str(src), start))


def code_hash(module_file) -> str:
    """A short hash of the code a module runs (its file and the closure of its imports in this
    package): what a checkpoint is stamped with, so that a run of other code is never resumed."""
    import hashlib

    module_file = Path(module_file).resolve()
    src = next(p for p in module_file.parents if (p / PACKAGE).is_dir() and p / PACKAGE in module_file.parents)
    h = hashlib.sha256()
    for f in sorted({str(module_file), *code_of(module_file, src)}):
        h.update(Path(f).relative_to(src).as_posix().encode() + Path(f).read_bytes())
    return h.hexdigest()[:16]
