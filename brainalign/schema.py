"""Declared schemas of brainalign's definition files, validated with pydantic.

Every file a user writes (a benchmark YAML, a dataset manifest, a batch model list) is checked
against a pydantic model whose configuration forbids unknown keys, so a misspelt key anywhere is
an error when the file is loaded, before any model runs. :func:`validate` turns pydantic's errors
into one line per problem, each naming the file and the key's path::

    benchmarks/x.yaml: statistics.bootstrap.bootstrapp: unknown key (did you mean 'seed'?); allowed: ci, n, seed

The same models generate the key reference in ``docs/benchmark-keys.md``
(:func:`key_reference`; ``python -m brainalign.schema`` rewrites the file).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticUndefined

from brainalign.errors import BrainAlignError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every schema: unknown keys are errors; values are checked, not silently coerced
    across kinds (a list is never read as a string)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_text(v: Any) -> Any:
    # YAML reads `version: 1` and `name: 190923` as numbers; these keys are text.
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


Text = Annotated[str, BeforeValidator(_as_text)]
"""A string field that also takes a YAML number (``version: 1``)."""


def read_yaml(path: Path, error: type[BrainAlignError]) -> Any:
    """The parsed YAML of ``path``; an unreadable or invalid file raises ``error`` naming it."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise error(f"{path}: cannot be read: {err.strerror or err}") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from err


# ----- error formatting ----------------------------------------------------------------------------

def _unwrap(tp: Any) -> list[Any]:
    """The model classes a field annotation may hold (through Optional, list, dict, Annotated)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, types.UnionType, list, tuple, dict, typing.Union):
        args = get_args(tp)
        if origin is dict:
            args = args[1:]
        return [m for a in args for m in _unwrap(a)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema model that holds the key at ``loc[-1]`` (best effort; None when unknown)."""
    current: list[type[BaseModel]] = [root]
    for part in loc[:-1]:
        if isinstance(part, int) or not current:
            continue
        nxt: list[type[BaseModel]] = []
        for m in current:
            f = m.model_fields.get(str(part))
            if f is not None:
                nxt += _unwrap(f.annotation)
        if not nxt:  # a dict key (e.g. a property name): stay on the value models
            nxt = current if all(str(part) not in m.model_fields for m in current) else []
        current = nxt
    return current[0] if len(current) == 1 else None


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_PRIMITIVE_TAGS = {"str", "int", "float", "bool", "none"}
_TAG = re.compile(r"^(function-\w+|list|dict|tuple|literal|constrained-\w+|nullable|union)\[")


def _is_tag(part: Any, model_names: set[str]) -> bool:
    """Whether a pydantic error location part names a tried union member, not a user's key."""
    return isinstance(part, str) and (part in _PRIMITIVE_TAGS or part in model_names
                                      or bool(_TAG.match(part)))


def format_errors(err: ValidationError, schema: type[BaseModel]) -> list[str]:
    """One ``key.path: problem`` line per pydantic error, unknown keys with their allowed ones."""
    lines: list[str] = []
    names = {m.__name__ for m in _models_of(schema)}
    for e in err.errors(include_url=False):
        raw_loc = tuple(e["loc"])
        tags = [p for p in raw_loc if _is_tag(p, names)]
        if tags and tags[0] in _PRIMITIVE_TAGS and isinstance(e["input"], dict):
            continue  # a mapping was given: the mapping member of the union reports its problems
        loc = tuple(p for p in raw_loc if not _is_tag(p, names))
        where = _loc_text(loc)
        kind = e["type"]
        if kind == "extra_forbidden":
            model = _model_at(schema, loc)
            msg = "unknown key"
            if model is not None:
                allowed = sorted(model.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.7)
                msg += (f" (did you mean {close[0]!r}?)" if close else "") + f"; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            msg = "missing field"
        elif kind == "literal_error":
            msg = f"{e['input']!r} is not allowed; {e['msg'][0].lower()}{e['msg'][1:]}"
        elif kind in ("value_error", "assertion_error"):
            msg = str(e["ctx"].get("error", e["msg"])) if e.get("ctx") else e["msg"]
        else:
            shown = repr(e["input"])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            msg = f"{e['msg'][0].lower()}{e['msg'][1:]} (got {shown})"
        msg = re.sub(r"[Ii]nput should be a valid dictionary or instance of \w+", "should be a mapping", msg)
        msg = re.sub(r"^[Ii]nput should be", "should be", msg)
        msg = msg.replace("; input should be", "; it should be")
        for part in str(msg).split("\n"):  # a validator may report several problems, with their paths
            line = f"{where}: {part}" if loc else part
            if line not in lines:  # a union reports one problem once per member
                lines.append(line)
    return lines


def validate(schema: type[M], raw: Any, path: Path | str, error: type[BrainAlignError]) -> M:
    """``raw`` validated against ``schema``; problems raise ``error``, one line each, each naming
    the file ``path`` and the key's path."""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise error("\n".join(f"{path}: {line}" for line in format_errors(err, schema))) from None


# ----- documentation -------------------------------------------------------------------------------

def _type_text(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        return _type_text(get_args(tp)[0])
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in get_args(tp) if a is not type(None))
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        k, v = get_args(tp)
        return f"mapping {_type_text(k)} → {_type_text(v)}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def model_table(model: type[BaseModel]) -> str:
    """A markdown table of ``model``'s keys: type, default (or *required*), meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if f.is_required():
            default = "*required*"
        elif f.default_factory is not None:
            default = "(defaults of its keys)" if _unwrap(f.annotation) else f"`{f.default_factory()!r}`"
        elif f.default is PydanticUndefined or f.default is None:
            default = ""
        else:
            default = f"`{f.default!r}`" if isinstance(f.default, str) else f"`{f.default}`"
        desc = (f.description or "").replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_text(f.annotation)} | {default} | {desc} |")
    return "\n".join(rows)


def _models_of(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model nested in it, in first-seen order."""
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        m = todo.pop(0)
        if m in seen:
            continue
        seen.append(m)
        for f in m.model_fields.values():
            todo += [x for x in _unwrap(f.annotation) if x not in seen]
    return seen


def key_reference() -> str:
    """The markdown key reference of every definition file, generated from the schemas."""
    from brainalign.benchmarks.registry import KINDS
    from brainalign.benchmarks.schemas import BenchmarkSchema
    from brainalign.data.manifest import ManifestSchema
    from brainalign.runner.batch import ModelListSchema

    out = ["# Keys of brainalign's definition files", "",
           "Generated from the pydantic schemas by `python -m brainalign.schema`; do not edit by hand "
           "(a test checks that this file is up to date). Every mapping refuses keys it does not list: "
           "a misspelt key is an error naming the file and the key's path, raised when the file is "
           "loaded.", ""]
    documented: list[type[BaseModel]] = []

    def section(title: str, root: type[BaseModel], intro: str) -> None:
        out.extend([f"## {title}", "", intro, ""])
        for m in _models_of(root):
            if m in documented:
                continue
            documented.append(m)
            doc = (m.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            out.extend([f"### {m.__name__}", "", doc, "", model_table(m), ""])

    section("Benchmark YAML (every kind)", BenchmarkSchema,
            "The keys every benchmark file shares; the kind's own schema narrows the sections below.")
    for kind, cls in KINDS.items():
        section(f"Benchmark kind `{kind}` ({cls.__name__})", cls.schema,
                f"`kind: {kind}` files are validated by `{cls.schema.__name__}`.")
    out.extend(["## Readers (data sections)", "",
                "`stimuli`, `target`, `ceiling.trials`, a session's overrides and each "
                "`target.properties` entry name a `reader`; their other keys are its parameters "
                "(checked when the file is loaded). Every section may also name `dataset`: read "
                "that dataset's files instead of the benchmark's.", ""])
    out.extend(_reader_tables())
    section("Dataset manifest (`data_manifests/*.yaml`)", ManifestSchema,
            "One file per dataset: which files make it, where to download them and their checksums.")
    section("Batch model list (`brainalign batch models.yaml`)", ModelListSchema,
            "A plain text file of model ids (one per line) or a YAML file of this form.")
    return "\n".join(out).rstrip() + "\n"


def _reader_tables() -> list[str]:
    import inspect

    from brainalign.data.readers import READERS, reader_parameters

    out = []
    for name in sorted(READERS):
        params = reader_parameters(name) or {}
        rows = ["| key | default |", "|---|---|"]
        for key, p in params.items():
            default = "*required*" if p.default is inspect.Parameter.empty else f"`{p.default}`"
            rows.append(f"| `{key}` | {default} |")
        out.extend([f"### reader `{name}`", "", *rows, ""])
    return out


DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmark-keys.md"


def write_key_reference(path: Path | str = DOCS_PATH) -> Path:
    """Write :func:`key_reference` to ``path`` (default ``docs/benchmark-keys.md``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key_reference())
    return path


if __name__ == "__main__":
    print(write_key_reference())
