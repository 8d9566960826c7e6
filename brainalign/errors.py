"""Named errors. Each says what was wrong and where (file, stimulus id, layer, benchmark)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BrainAlignError(Exception):
    """Base class of every error brainalign raises on purpose."""


def without_names(message: str, *names: str) -> str:
    """``message`` without the ``"<name>: "`` prefixes it starts with (any of ``names``, in any
    order): a failure line that already names the model or benchmark says it once, however many
    layers of the library prefixed the message on the way up."""
    text = str(message).strip()
    prefixes = [f"{n}: " for n in names if n]
    while True:
        lead = next((p for p in prefixes if text.startswith(p)), None)
        if lead is None:
            return text
        text = text[len(lead):].lstrip()


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class UnknownModelError(BrainAlignError, KeyError):
    """A model identifier that no source knows.

    ``suggestions`` (real ids, shown as given) replaces the close matches drawn from ``known``;
    ``note`` is appended (e.g. the list of sources).
    """

    def __init__(self, name: str, known: Iterable[str] = (), *,
                 suggestions: Iterable[str] | None = None, note: str = ""):
        known = list(known)
        self.name = name
        if suggestions is not None:
            sug = list(dict.fromkeys(suggestions))
            hint = f" Did you mean: {', '.join(sug)}?" if sug else ""
        else:
            hint = _suggest(name, dict.fromkeys(known))
        super().__init__(f"Unknown model {name!r}.{hint}" + (f"\n{note}" if note else ""))

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownLayerError(BrainAlignError, KeyError):
    """A layer name or pattern that matches no layer of the model."""

    def __init__(self, pattern: str, model: str, known: Iterable[str] = (), model_id: str | None = None,
                 where: str = ""):
        known = list(known)
        self.pattern, self.model = pattern, model
        # The command takes the id the model was loaded from; a checkpoint's or a wrapped
        # module's name is no id, so only `model.layers` is offered for those.
        how = f"`brainalign layers {model_id}` or `model.layers`" if model_id else "`model.layers`"
        what = f"The {where} {pattern!r}" if where else f"Layer {pattern!r}"  # where: which setting named it
        super().__init__(
            f"{what} matches no layer of model {model!r}.{_suggest(pattern, known)} "
            f"List the layers with {how}."
        )

    def __str__(self) -> str:
        return self.args[0]


class UnrecordableLayerError(UnknownLayerError):
    """A module named as a layer that runs but gives no tensor to record (it returns a dict,
    None, or a tuple whose first element is not a tensor). An :class:`UnknownLayerError`, so
    code that catches that catches this too."""

    def __init__(self, layer: str, model: str, returns: str, where: str = ""):
        self.pattern, self.model, self.returns = layer, model, returns
        what = f"The {where} {layer!r}" if where else f"Layer {layer!r}"
        KeyError.__init__(  # UnknownLayerError's message would say it matches nothing
            self, f"{what} of model {model!r} returns {returns}, not a tensor: brainalign records "
            "a module's tensor output, or the first element of a tuple or list when that is a tensor.")


class UnknownBenchmarkError(BrainAlignError, KeyError):
    """A benchmark identifier with no definition in any benchmark directory."""

    def __init__(self, name: str, known: Iterable[str] = ()):
        known = list(known)
        self.name = name
        super().__init__(f"Unknown benchmark {name!r}.{_suggest(name, known)} "
                         "List them with `brainalign list benchmarks`.")

    def __str__(self) -> str:
        return self.args[0]


class UnknownDatasetError(BrainAlignError, KeyError):
    """A dataset identifier with no manifest."""

    def __init__(self, name: str, known: Iterable[str] = ()):
        known = list(known)
        self.name = name
        super().__init__(f"Unknown dataset {name!r}.{_suggest(name, known)} "
                         "List them with `brainalign list datasets`.")

    def __str__(self) -> str:
        return self.args[0]


class ChecksumMismatchError(BrainAlignError):
    """A file whose sha256 differs from the one its manifest records."""

    def __init__(self, path: str, expected: str, actual: str):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"Checksum mismatch for {path}: expected sha256 {expected}, got {actual}. "
            "The file is corrupt, truncated or a different version; delete it or fix the manifest."
        )


class DataNotFoundError(BrainAlignError, FileNotFoundError):
    """A data file found neither in a local data directory, nor the cache, nor by download."""

    def __init__(self, filename: str, looked_in: Iterable[str], url: str | None, reason: str = "",
                 *, hint: str = ""):
        """``hint``, when given, replaces the generic advice (e.g. a data directory that is the
        dataset folder itself, so the file was found one level too high)."""
        self.filename, self.looked_in, self.url = filename, list(looked_in), url
        places = "\n".join(f"  - {p}" for p in self.looked_in) or "  (no local directory configured)"
        how = f"\nDownload from {url} failed: {reason}" if url else ""
        how = how or (f"\nNot downloaded: {reason}" if reason else "")
        advice = ("Set the data directory (data_dir=..., --data-dir, or BRAINALIGN_DATA) to a folder that "
                  "holds a copy" + (", or connect to the network so it can be downloaded into the cache."
                                    if url else "."))  # without a URL there is nothing to download
        super().__init__(f"Data file {filename!r} not found. Looked in:\n{places}{how}\n" + (hint or advice))

    def __str__(self) -> str:
        return self.args[0]


class DownloadError(BrainAlignError, OSError):
    """A download that failed (network, HTTP status, truncated body)."""


class WeightsUnavailableError(BrainAlignError, FileNotFoundError):
    """Pretrained weights neither cached nor downloadable."""

    def __str__(self) -> str:
        return self.args[0]


class CheckpointMismatchError(BrainAlignError, RuntimeError):
    """A checkpoint whose parameter names or shapes do not match the architecture.

    ``missing``: the model's keys the checkpoint lacks; ``unexpected``: the checkpoint's keys the
    model lacks; ``shapes``: keys both have, with other shapes (``"key (checkpoint (8, 3) vs
    model (16, 3))"``). Each list is named only when it is not empty."""

    def __init__(self, path: str, arch: str, missing: list[str], unexpected: list[str],
                 shapes: list[str] | None = None):
        self.path, self.missing, self.unexpected, self.shapes = path, missing, unexpected, shapes or []

        def _show(keys: list[str]) -> str:
            head = ", ".join(keys[:10])
            return head + (f", … ({len(keys)} in all)" if len(keys) > 10 else "")

        parts = [f"{what} [{_show(keys)}]" for what, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("other shapes", self.shapes)) if keys]
        super().__init__(f"Checkpoint {path} does not fit architecture {arch!r}: {'; '.join(parts)}.")


class CheckpointError(BrainAlignError, ValueError):
    """A checkpoint file that cannot be read as tensors: empty, truncated, not a checkpoint, or a
    pickle that carries code (never run: checkpoints are loaded with ``weights_only=True``)."""


class ModelImportError(BrainAlignError, ImportError):
    """A ``file:`` model whose Python module cannot be imported, or lacks the named callable."""


class StimulusError(BrainAlignError, ValueError):
    """A stimulus that cannot be used (failed to decode, wrong shape, duplicate id)."""


class StimulusMismatchError(StimulusError):
    """Activations handed to a benchmark's ``score_layer`` that are not responses to its stimuli:
    stimulus ids missing, unknown or repeated, or an array without ids whose length is not the
    benchmark's number of stimuli. The message gives the counts and a few of the ids."""


class DeviceUnavailableError(BrainAlignError, ValueError):
    """A ``device`` that is no device name, or one this machine does not have (``cuda`` without a
    usable GPU, an index past the last GPU, ``mps`` off Apple hardware)."""


class ForwardError(BrainAlignError, RuntimeError):
    """A model forward pass that failed on the stimuli."""


class NoLayersError(BrainAlignError, ValueError):
    """A model with no layer to score by default (none of its modules is a default recording
    site, or none returns a tensor), so nothing would be recorded."""

    def __init__(self, model: str, all_layers: Iterable[str] = ()):
        all_layers = list(all_layers)
        self.model = model
        if all_layers:
            how = (f" It has {len(all_layers)} recordable module(s) that are not scored by default "
                   f"({', '.join(all_layers[:5])}{', …' if len(all_layers) > 5 else ''}): name the "
                   f"ones to score (--layers / layers=); list them with "
                   f"`brainalign layers {model} --all`.")
        else:
            how = (" No submodule of it returns a tensor (the whole model is one module?): wrap "
                   "it, e.g. nn.Sequential(module), so its output can be recorded.")
        super().__init__(f"{model}: the model has no layer to score by default.{how}")


class EmptyLayerListError(BrainAlignError, ValueError):
    """``layers=[]``: a selection of no layer (None, or leaving it out, means the model's default
    layers)."""

    def __init__(self, model: str):
        super().__init__(f"{model}: layers=[] selects no layer; give layer names or globs, or leave layers "
                         "out (None) for the model's default layers")


class CoarseBootstrapWarning(UserWarning):
    """Too few bootstrap samples for the CI level: its ends are the extreme samples."""


class DuplicateModelNameError(BrainAlignError, ValueError):
    """Two models of one run under the same name (two checkpoints of one training run): their rows
    would be read as one model's."""

    def __init__(self, name: str, first: str, second: str, why: str = ""):
        self.name = name
        super().__init__(
            f"{second} is named {name!r}, as {first} of this run is{f' ({why})' if why else ''}: their scores "
            "would be one model's rows. "
            "Give each a distinct name: `--label` per `--model` (brainalign score), `label` in a batch "
            "list, or model.name = … in Python")


class OtherNetworkError(BrainAlignError, ValueError):
    """An output folder keeps rows of a model name from other weights than the model now scored
    under that name, on benchmarks this run does not score again: the folder would hold two
    networks under one name, and its report would average them as one model."""

    def __init__(self, folder: object, name: str, held: dict[str, str], weights_hash: str):
        self.name = name
        others = ", ".join(sorted({h[:12] for h in held.values()}))
        super().__init__(
            f"{folder} keeps rows of {name!r} on {', '.join(sorted(held))} from other weights (sha256 "
            f"{others}…) than the {name!r} scored now (sha256 {weights_hash[:12]}…): the folder would hold "
            "two networks under one name, and its report would average them. Give this one its own name "
            "(`--label` for brainalign score, `label` in a batch list), write to another folder, or score "
            "it on those benchmarks too (their rows are then replaced)")


class SubsetOverFullError(BrainAlignError, ValueError):
    """A ``--max-stimuli`` subset run would replace the full-data scores an output folder holds of
    the same model and benchmark: a quick look never replaces what may be a paper number."""

    def __init__(self, folder: object, pairs: list[str], max_stimuli: int | None):
        listed = ", ".join(pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
        super().__init__(
            f"{folder} holds full-data scores of {listed}; --max-stimuli {max_stimuli} (a quick look on a "
            "subset) would replace them. Score the subset into another folder (--out), or without "
            "--max-stimuli to score the full data again")


class BenchmarkDefinitionError(BrainAlignError, ValueError):
    """A benchmark YAML or a manifest with an unknown key, a missing field or a bad value."""


class ManifestError(BenchmarkDefinitionError):
    """A dataset manifest with an unknown key, a missing field or a bad value (file and key path)."""


class InsecureDownloadError(BrainAlignError, ValueError):
    """A download that is not https or has no checksum, refused without the explicit opt-in
    (``allow_insecure=True`` or ``BRAINALIGN_ALLOW_INSECURE=1``)."""


class UnsafeArchiveError(BrainAlignError, ValueError):
    """An archive member whose name would land outside its folder (absolute, ``..``)."""


class DataAccessError(BrainAlignError, PermissionError):
    """A data folder or file that exists but cannot be read."""


class DataFaultError(BrainAlignError, ValueError):
    """Data that were read but cannot be right: NaN responses, an RDM that is not symmetric or has
    a non-zero diagonal, a similarity matrix given as an RDM, fMRI betas with NaN, a mask that does
    not overlap the betas. The message names the file and where in it."""


class MetricInputError(BrainAlignError, ValueError):
    """Arrays a metric cannot use: mismatched stimuli, NaN/inf, bad RDM shape, too few samples."""


class ConstantRDMError(MetricInputError):
    """An RDM whose dissimilarities are all equal (within round-off): it has no rank order and no
    variance, so every RSA comparison with it (and a noise ceiling that pools it) is undefined.

    ``index`` is the position of the offending RDM in a stack (e.g. the subject), else None.
    """

    def __init__(self, message: str, index: int | None = None):
        self.index = index
        super().__init__(message)

class ResultsTableError(BrainAlignError, ValueError):
    """A results table (or a results folder) that cannot be plotted or reported: empty, missing
    columns, no readable CSV."""
class MemoryBudgetError(BrainAlignError, MemoryError):
    """A run whose recorded activations would not fit the memory budget, refused before it starts."""


class BatchSpecError(BrainAlignError, ValueError):
    """A batch model list (YAML or text) with an unknown key, a missing field or a duplicate label."""


class BatchOutputError(BrainAlignError, FileExistsError):
    """A batch output folder that holds an earlier run's results, written to without ``resume``."""

class RunFolderError(BrainAlignError, FileExistsError):
    """A training run folder that holds an earlier run (checkpoints, history, run.json), written
    to without ``overwrite``: a new run would mix its checkpoints with the old ones."""


class UnitLocationError(BrainAlignError, ValueError):
    """A layer whose units cannot be located spatially for in-silico physiology."""


class BatchLockedError(BatchOutputError):
    """A batch output folder another run is writing to right now (its lock file names the holder)."""


class BatchWorkerError(BrainAlignError, RuntimeError):
    """A batch's worker processes that cannot start at all (a script calling ``run_batch(workers=...)``
    without the ``if __name__ == "__main__":`` guard, or run from stdin): the run stops before any
    pair, rather than failing every pair as a model's failure."""


class LayerActivationError(BrainAlignError, ValueError):
    """A layer whose recorded activations cannot be scored (NaN / inf values): named, recorded in
    the result's ``meta["failed_layers"]``, and the other layers' rows are kept."""


class ComparisonError(BrainAlignError, ValueError):
    """Two models' scores that cannot be compared statistically (base of the two below)."""


class MissingBootstrapError(ComparisonError):
    """A chosen layer whose bootstrap samples are not in ``ScoreResult.details`` (results saved
    before details were kept, or a benchmark kind that keeps none)."""


class UnpairedSamplesError(ComparisonError):
    """Two models' bootstrap samples that were not drawn with the same index sets on the same data
    (different seed, number of samples, stimuli, data or benchmark version), so not paired."""
