"""``file:`` models: your own code, or a checkpoint plus an architecture.

``load_model("file:runs/digits/epoch_003.pt")``
    A checkpoint written by :func:`brainalign.train`: its metadata names the architecture, its
    options and its preprocessing.
``load_model("file:zoo:lenet5", weights="ckpt.pt")`` / ``"file:torchvision:resnet18"``
    A named architecture and a checkpoint of its state dict.
``load_model("file:mynet:build", weights="ckpt.pt", input_size=64)``
    A callable in your own Python module, returning an ``nn.Module`` (called with the remaining
    options) or a :class:`BrainModel`. The module is found on ``sys.path`` or, failing that, as
    ``mynet.py`` (or the package ``mynet/``) in the working directory; ``mynet`` may be dotted
    (``mylab.nets:build``).
``load_model("file:./mynet.py:build")`` / ``"file:/abs/path/mynet.py:build"``
    The same from a path to a ``.py`` file.

The module's own folder is importable while it is imported and while its callable runs, as
``python mynet.py`` would make it: ``mynet.py`` may ``from blocks import Block`` with
``blocks.py`` beside it. ``sys.path`` is restored afterwards (the sibling modules stay imported).

The callable (the "factory") is called as ``build(**options)``: only the keyword options given to
``load_model`` beyond its own (``weights``, ``seed``, ``input_size``, ``in_channels``, ``mean``,
``std``, ``mode``, ``revision``); from the command line (``--model file:mynet:build``) that is
no argument at all. It never receives ``weights`` or ``seed``: torch's random number generator
is seeded with ``seed`` around the call (the global RNG state is restored afterwards), so random
initial weights are reproducible, and a ``weights`` checkpoint is loaded into the returned
module after it is built (its parameter names must match). ``build`` returns an ``nn.Module``
taking (N, C, H, W) images, or a :class:`BrainModel`.

Checkpoints are read by :mod:`brainalign.models.checkpoint`, never unpickling code. Importing
your module runs it, as ``import`` does: that is why you name it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from brainalign.errors import ModelImportError, UnknownModelError, WeightsUnavailableError
from brainalign.models.base import BrainModel, seeded
from brainalign.models.build import from_module
from brainalign.models.checkpoint import apply_checkpoint, checkpoint_metadata
from brainalign.settings import PathLike

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")

Loader = Callable[..., BrainModel]


def load_file(name: str, weights: str = "random", seed: int = 0, *, load: Loader,
              sources: Sequence[str] = (), **options: Any) -> BrainModel:
    """Load a ``file:`` model (see the module docstring for the forms).

    Parameters
    ----------
    load
        The registry's ``load_model``, used for ``file:<source>:<name>`` and checkpoints that
        name their architecture (passed in, so this module does not import the registry).
    sources
        The registry's source prefixes.

    Raises
    ------
    ModelImportError
        Your module cannot be imported (the import error is shown).
    UnknownModelError
        Your module lacks the named callable (its callables are listed).
    CheckpointError
        An unreadable checkpoint (see :func:`brainalign.models.checkpoint.read_checkpoint`).
    WeightsUnavailableError
        A checkpoint file that does not exist or names no architecture.
    """
    target, sep, attr = _split(name)
    if is_checkpoint(name):
        return _checkpoint(target, seed, load, **options)
    if target.endswith(".py") or ("/" in target and not sep):
        if not sep:
            raise ModelImportError(
                f"file:{name}: name the callable that builds the network: file:{target}:<callable>"
                f"{_callables_hint(target)}")
        return _entry_point(_import_path(Path(target), f"file:{name}"), f"{target}:{attr}", attr, weights,
                            seed, **options)
    if sep and target in sources and target != "file":
        model = load(f"{target}:{attr}", weights=weights, seed=seed, **options)
        model.source = f"file+{model.source}"
        return model
    if not sep:
        from brainalign.models.zoo import ZOO

        raise UnknownModelError(f"file:{name}", suggestions=[f"file:zoo:{n}" for n in ZOO if n == name],
                                note="file: ids are file:<checkpoint.pt>, file:<source>:<name>, "
                                     "file:<module>:<callable> or file:<path/to/file.py>:<callable>")
    return _entry_point(import_user_module(target, f"file:{name}"), target + ":" + attr, attr, weights, seed,
                        **options)


def is_checkpoint(name: str) -> bool:
    """Whether ``file:<name>`` is a checkpoint file (its weights and architecture in it), not a
    module's callable: the form that ignores ``weights``."""
    target, sep, _ = _split(name)
    return not sep and (target.endswith(_CHECKPOINT_SUFFIXES) or
                        (Path(target).is_file() and not target.endswith(".py")))


def is_checkpoint_id(model_id: str | None) -> bool:
    """Whether a model id is ``file:<checkpoint>`` (:func:`is_checkpoint`): its weights are in it,
    so it takes none."""
    return bool(model_id) and str(model_id).startswith("file:") and is_checkpoint(str(model_id)[len("file:"):])


def _split(name: str) -> tuple[str, str, str]:
    """``"mod:build"`` → (mod, ":", build); a Windows drive (``C:\\x.pt``) is not a separator."""
    head, sep, tail = name.rpartition(":")
    if not sep or (len(head) == 1 and head.isalpha()) or "/" in tail or "\\" in tail:
        return name, "", ""
    return head, sep, tail


def _checkpoint(path: str, seed: int, load: Loader, **options: Any) -> BrainModel:
    if not Path(path).is_file():
        raise WeightsUnavailableError(f"checkpoint file {path!r} does not exist")
    meta = checkpoint_metadata(path)
    arch = meta.get("arch")
    if not arch:
        raise WeightsUnavailableError(
            f"checkpoint {path} records no architecture (no meta['arch']); name one: "
            f"load_model('file:zoo:lenet5', weights={path!r}) or 'file:<module>:<callable>'")
    opts = {**meta.get("arch_options", {}), **options}
    # The normalisation the network was trained with; checkpoints of brainalign's digits
    # training from before it was recorded used 0.5 / 0.5.
    norm = meta.get("preprocessing") or ({"mean": [0.5], "std": [0.5]} if meta.get("dataset") == "digits"
                                         else {})
    chans = int(opts.get("in_channels", 3))
    for key in ("mean", "std"):
        if key in norm and key not in options:
            vals = list(norm[key])
            opts[key] = tuple(vals * chans if len(vals) == 1 else vals)
    model = load(f"file:{arch}", weights=path, seed=seed, **opts)
    model.name = checkpoint_name(path, meta)
    model.extra["checkpoint_meta"] = {k: v for k, v in meta.items() if k != "history"}
    return model


def checkpoint_name(path: PathLike, meta: dict[str, Any] | None = None) -> str:
    """The name ``load_model("file:<path>")`` gives a checkpoint's model: the name its training
    run recorded (every epoch of a run shares it), else ``file:<file stem>``; read without
    loading the weights."""
    meta = checkpoint_metadata(path) if meta is None else meta
    return str(meta.get("name") or f"file:{Path(path).stem}")


def checkpoint_model_name(model_id: str) -> str | None:
    """:func:`checkpoint_name` of ``model_id`` when it is a ``file:`` checkpoint that can be read;
    None for any other id (its name is its id, or its code's to choose) or an unreadable file
    (loading it says what is wrong)."""
    from brainalign.errors import BrainAlignError

    target = model_id.removeprefix("file:")
    if not is_checkpoint_id(model_id) or not Path(target).is_file():
        return None
    try:
        return checkpoint_name(target)
    except BrainAlignError:
        return None


def import_user_module(module_name: str, ref: str) -> ModuleType:
    """Import ``module_name`` from ``sys.path``, else from the working directory (as ``file:``
    models and batch ``factory`` entries are found); ``ref`` names the model in errors
    (``file:mynet:build``, ``factory 'mynet:build'``).

    Raises
    ------
    ModelImportError
        No such module, or importing it failed (with the module's own error)."""
    if module_name.startswith(".") or "/" in module_name:  # a path, not a module: importlib's TypeError
        raise ModelImportError(f"{ref}: {module_name!r} is a path, not a module name: give the file, "
                               f"file:{module_name}.py:<callable>")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # Only the named module itself missing sends us to the working directory; a module
        # that exists but fails (its own imports, syntax, …) shows that error.
        if err.name is None or not (module_name == err.name or module_name.startswith(err.name + ".")):
            raise _import_error(ref, module_name, err) from err
    except Exception as err:
        raise _import_error(ref, module_name, err) from err
    parts = module_name.split(".")
    base = Path.cwd().joinpath(*parts)
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return _import_path(cand, ref, module_name)
    raise ModelImportError(
        f"{ref}: no module {module_name!r} on the Python path, and no "
        f"{'/'.join(parts)}.py in the working directory {Path.cwd()}")


def _import_path(path: Path, ref: str, module_name: str | None = None) -> ModuleType:
    """Import a ``.py`` file (or a package's ``__init__.py``) by path, once per file."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ModelImportError(f"{ref}: no file {path}")
    # A stable module name per file, registered in sys.modules so pickling, inspect.getsource
    # (which the activation cache key reads) and repeated loads see one module.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    mod_name = module_name or f"brainalign_user.{path.stem}_{digest}"
    source = _source_state(path, module_name)
    cached = sys.modules.get(mod_name)
    if cached is not None and getattr(cached, "__file__", None) == str(path):
        if getattr(cached, "__brainalign_source__", None) == source:
            return cached
        # Edited since it was imported (in this process: a notebook, a second batch run): the
        # file and the sibling modules it imported are imported again, not run as they were.
        old = set(getattr(cached, "__brainalign_source__", None) or {}) | set(source)
        for name, mod in list(sys.modules.items()):
            f = getattr(mod, "__file__", None)
            if f and str(Path(f).resolve()) in old:
                del sys.modules[name]
        importlib.invalidate_caches()
    is_pkg = path.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        mod_name, path, submodule_search_locations=[str(path.parent)] if is_pkg else None)
    if spec is None or spec.loader is None:
        raise ModelImportError(f"{ref}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        with _importable(_folders(path, module_name)):
            spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(mod_name, None)
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise _import_error(ref, str(path), err) from err
    module.__brainalign_source__ = source  # type: ignore[attr-defined]
    return module


def _source_state(path: Path, module_name: str | None) -> dict[str, str]:
    """file → sha256 of ``path`` and the local modules it imports (:func:`_local_imports`)."""
    from brainalign.activations.cache import file_sha256

    return {str(f): file_sha256(f) for f in _local_imports(path, _folders(path, module_name))}


def _folders(path: Path, module_name: str | None = None) -> list[str]:
    """The folders a file's own imports may need: its folder (as ``python file.py`` puts it on
    the path) and, for a dotted module found in the working directory, the folder its top
    package sits in (``from mylab import blocks`` inside ``mylab/nets.py``)."""
    folders = [str(path.parent)]
    if module_name:
        depth = len(module_name.split(".")) - (0 if path.name == "__init__.py" else 1)
        folders.append(str(path.parents[depth]))
    return list(dict.fromkeys(folders))


_PATH_LOCK = threading.RLock()  # threads that load file: models (Dask) change sys.path one at a time


@contextlib.contextmanager
def _importable(folders: Sequence[str]) -> Iterator[None]:
    """``folders`` at the front of ``sys.path`` for the block; afterwards each entry this added is
    removed again (whatever the block did to ``sys.path`` meanwhile), so nothing global changes."""
    with _PATH_LOCK:
        added = [f for f in folders if f not in sys.path]
        sys.path[:0] = added
        try:
            yield
        finally:
            for f in added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(f)


def _import_error(ref: str, what: str, err: BaseException) -> ModelImportError:
    tb = err.__traceback__
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code.co_filename
        if "importlib" not in code:
            where = f" ({code}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return ModelImportError(f"{ref}: importing {what} failed: {type(err).__name__}: {err}{where}")


def _callables_hint(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        return f" (and {path} does not exist)"
    try:
        import ast

        tree = ast.parse(p.read_text())
    except (OSError, SyntaxError, ValueError):
        return ""
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    return f"; {p.name} defines {names}" if names else ""


def _entry_point(module: ModuleType, label: str, attr: str, weights: str, seed: int,
                 **options: Any) -> BrainModel:
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        defined = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                         and getattr(v, "__module__", None) == module.__name__)
        import difflib

        close = difflib.get_close_matches(attr, defined, n=3, cutoff=0.5)
        prefix = label[: -len(attr)]
        raise UnknownModelError(f"file:{label}", suggestions=[f"file:{prefix}{c}" for c in close],
                                note=f"{module.__name__} ({getattr(module, '__file__', '')}) has no "
                                     f"callable {attr!r}; it defines {defined}")
    input_size = int(options.pop("input_size", 224))
    in_channels = int(options.pop("in_channels", 3))
    mean, std = options.pop("mean", None), options.pop("std", None)
    mode = options.pop("mode", "eval")
    revision = options.pop("revision", None)
    # Its folder stays importable while it builds: a factory may import its siblings lazily.
    here = getattr(module, "__file__", None)
    with seeded(seed), _importable(_folders(Path(here)) if here else []):
        built = fn(**options)
    if isinstance(built, BrainModel):
        module_, model = built.module, built
    elif isinstance(built, nn.Module):
        module_, model = built, None
    else:
        raise ModelImportError(f"file:{label} returned a {type(built).__name__}, not an nn.Module "
                               f"(signature {inspect.signature(fn)})")
    if weights not in ("random", "custom"):
        if not Path(weights).is_file():
            raise WeightsUnavailableError(f"weights={weights!r} for file:{label} is neither 'random' "
                                          "nor an existing checkpoint file")
        apply_checkpoint(module_, weights, label)
    if model is not None:
        model.weights, model.source = str(weights), "file"
        model._weights_hash = None
        return model
    return from_module(module_, f"file:{label}", source="file", weights=str(weights),
                       seed=seed if weights == "random" else None, input_size=input_size,
                       in_channels=in_channels, mean=mean, std=std, mode=mode, revision=revision,
                       extra={"arch": label, "arch_options": options})


def source_files(name: str) -> list[Path]:
    """The files whose content makes the ``file:<name>`` model (``name`` without ``file:``), found
    without importing anything: a checkpoint itself; for your own module, its ``.py`` file and,
    followed through their ``import`` statements, the modules beside it (in the folders
    :func:`_folders` makes importable) that it imports, directly or not. Modules of installed
    packages are left out (their versions stand for them); ``[]`` for a registry architecture
    (``file:zoo:lenet5``) or a module that cannot be found. ``batch --resume`` hashes these to
    notice edited code (the activation cache keys on the built network's code instead)."""
    target, sep, _ = _split(name)
    if not sep:
        return [Path(target).resolve()] if Path(target).is_file() else []
    if target.endswith(".py"):
        path, module_name = Path(target).expanduser(), None
    else:
        path, module_name = module_file(target), target
    if path is None or not path.is_file():
        return []
    folders = _folders(path.resolve(), module_name)
    files = _local_imports(path.resolve(), folders)
    if module_name and "." in module_name:  # importing mylab.nets runs mylab/__init__.py first
        files += [f for f in _local_imports_of(folders[-1], module_name.split(".")[:-1], folders)
                  if f not in files]
    return files


def top_level_names(path: Path) -> set[str] | None:
    """The names module ``path`` binds at its top level (definitions, assignments, imports, also
    inside top-level ``if`` / ``try`` / ``with`` blocks), read from its source without running
    it; None when the source cannot tell (a star import, a module ``__getattr__``, a file that
    cannot be read or parsed: importing it will say)."""
    import ast

    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        targets: list[ast.expr] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
            targets = [node.target]
        elif isinstance(node, ast.With | ast.AsyncWith):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # globals()[…] = …, exec(…), setattr(module, …): names no reading can list.
            if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                   and n.func.id in ("globals", "exec", "setattr") for n in ast.walk(node)):
                return None
            # the statements of if / try / with / for / while / match blocks run at import too
            todo += [*getattr(node, "body", []), *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            todo += [b for h in [*getattr(node, "handlers", []), *getattr(node, "cases", [])] for b in h.body]
        names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return None if "__getattr__" in names else names


def missing_callable(ref: str) -> str | None:
    """Why the callable of ``ref`` (``"module:callable"`` or ``"path/to/file.py:callable"``: a
    batch ``factory``, or a ``file:`` id without its prefix) cannot be found, read from your
    module's source without importing it; None when it may be there, or when ``ref`` is not
    your own module's callable (a checkpoint, a registry architecture, an installed package:
    loading it says what is wrong)."""
    target, sep, attr = _split(ref)
    if not sep:
        return None
    path = Path(target).expanduser() if target.endswith(".py") else module_file(target)
    if path is None:
        return None
    if not path.is_file():
        return f"no file {target}"
    names = top_level_names(path)
    if names is None or attr in names:
        return None
    hint = _callables_hint(str(path))
    return f"{path} defines no {attr!r}" + (hint.replace(f"; {path.name} defines", "; it defines") if hint else "")


def module_exists(module_name: str) -> bool:
    """Whether :func:`import_user_module` would find ``module_name`` (your own module on the Python
    path or in the working directory, or an installed package's), without running it."""
    if module_file(module_name) is not None:
        return True
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing
        return False


def module_file(module_name: str) -> Path | None:
    """The file of module ``module_name`` where :func:`load_file` would find it (the Python path,
    else the working directory), without running it; None for a module of an installed package
    (or none at all)."""
    spec = None
    with contextlib.suppress(Exception):  # a dotted name's parent packages are imported (as load does)
        spec = importlib.util.find_spec(module_name)
    if spec is not None and spec.origin and Path(spec.origin).is_file():
        origin = Path(spec.origin)
        return None if {"site-packages", "dist-packages"} & set(origin.parts) else origin
    base = Path.cwd().joinpath(*module_name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _local_imports(path: Path, folders: Sequence[str]) -> list[Path]:
    """``path`` and every module file under ``folders`` it imports, transitively (by its AST)."""
    import ast

    import brainalign

    ours = Path(brainalign.__file__).resolve().parent  # the library itself: its version stands for it
    seen: dict[Path, None] = {}
    todo = [path]
    while todo:
        f = todo.pop()
        if f in seen or ours in f.parents or {"site-packages", "dist-packages"} & set(f.parts):
            continue
        seen[f] = None
        try:
            tree = ast.parse(f.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        names: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the file's own package folder
                    base = f.parent.parents[node.level - 2] if node.level > 1 else f.parent
                    mod = node.module.split(".") if node.module else []
                    todo += [c.resolve() for c in (base / "__init__.py",) if c.is_file()]
                    for name in [mod] + [[*mod, a.name] for a in node.names]:
                        todo += _module_files(base, name)
                    continue
                names += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        for mod_name in names:
            parts = [p for p in mod_name.split(".") if p]
            for folder in folders:
                todo += _module_files(Path(folder), parts)
    return list(seen)


def _local_imports_of(folder: str, parts: Sequence[str], folders: Sequence[str]) -> list[Path]:
    """:func:`_local_imports` of the package files importing ``parts`` from ``folder`` runs."""
    found: list[Path] = []
    for f in _module_files(Path(folder), parts):
        found += [g for g in _local_imports(f, folders) if g not in found]
    return found


def _module_files(folder: Path, parts: Sequence[str]) -> list[Path]:
    """The files importing ``.``-joined ``parts`` from ``folder`` runs: each package's
    ``__init__.py`` on the way and the module itself (those that exist)."""
    found = []
    for i in range(1, len(parts) + 1):
        stem = folder.joinpath(*parts[:i])
        found += [c.resolve() for c in (stem.with_suffix(".py"), stem / "__init__.py") if c.is_file()]
    return found
