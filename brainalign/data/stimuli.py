"""Stimulus sets: ordered stimulus ids, the images, per-stimulus metadata and the size in degrees."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from brainalign.errors import StimulusError
from brainalign.settings import PathLike

Channels = Literal["last", "first"]
"""Where an image array holds its colour channels: ``(…, H, W, C)`` or ``(…, C, H, W)``."""
_CHANNELS = (1, 2, 3, 4)  # gray, gray + alpha, RGB, RGBA

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")

# PIL modes that PIL itself converts to RGB (alpha dropped, palettes expanded, colour spaces
# converted); the rest are read as arrays and go through :func:`image_array`.
_PIL_TO_RGB = {"LA", "La", "PA", "P", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


def decode_image(file: Any, where: str) -> np.ndarray:
    """Decode an image file (path or file object) into the array :func:`image_array` takes.

    ``1`` → bool, ``L`` → uint8 (H, W), ``RGB`` → uint8 (H, W, 3), 16-bit grayscale
    (``I;16``, and PNG's ``I``, which holds at most 16 bits) → uint16, ``F`` → float32 (its range
    then has to be 0..1 or declared), other ``I`` → int32 (refused unless the range is declared);
    palette, alpha and other colour modes are converted by PIL to RGB (alpha ignored, as PIL's
    ``convert("RGB")`` and torchvision's readers do).

    Raises
    ------
    StimulusError
        A file that does not decode, naming ``where``.
    """
    from PIL import Image

    try:
        with Image.open(file) as im:
            im.load()
            return _pil_array(im, where)
    except StimulusError:
        raise
    except Exception as err:
        raise StimulusError(f"{where} failed to decode: {err}") from err


def _pil_array(im: Any, where: str) -> np.ndarray:
    """A PIL image as an array, by the mode rules of :func:`decode_image`."""
    mode = im.mode
    if mode in ("P", "PA"):  # through RGBA, so a palette's transparency is read, then ignored
        return np.asarray(im.convert("RGBA"))[..., :3].copy()
    if mode in _PIL_TO_RGB:
        return np.asarray(im.convert("RGB")).copy()
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode not in ("1", "L", "RGB", "I", "F"):
        raise StimulusError(f"{where}: image mode {mode!r} is not supported; convert it to RGB or L")
    arr = np.asarray(im).copy()
    if mode == "I" and im.format == "PNG":  # a 16-bit PNG that PIL opened as 32-bit ints
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise StimulusError(f"{where}: 16-bit PNG with values {arr.min()}..{arr.max()}")
        return arr.astype(np.uint16)
    return arr


def image_array(image: Any, *, value_range: tuple[float, float] | None = None,
                where: str = "stimulus", channels: Channels | None = None) -> np.ndarray:
    """The one rule that turns an image (array or PIL image) into pixel values for a model.

    Returns a float32 (H, W, C) array in 0..1 with C = 1 (grayscale) or 3 (RGB).

    Values
        bool → 0 / 1; uint8 → ÷ 255; uint16 → ÷ 65535 (16-bit PNG, TIFF); float → taken as 0..1
        and refused when outside it (a float image in 0..255 is ambiguous: state
        ``value_range=(0, 255)``); other integer types (int8 … int64, uint32, uint64; PIL's
        ``I``) → refused unless ``value_range`` is given. ``value_range=(lo, hi)`` maps lo → 0 and
        hi → 1 for any dtype; values then outside 0..1 are refused. NaN / inf are refused.
    Layout
        (H, W) and (H, W, 1) gray; (H, W, 2) gray + alpha; (H, W, 3) RGB; (H, W, 4) RGBA. Channels
        first ((C, H, W) with C in 1..4) is recognised when the last axis is not 1..4; when both
        axes could be channels, the numpy / PIL convention (channels last) holds unless
        ``channels="first"`` says otherwise (``"last"`` / ``"first"``: that layout, required).
    Alpha
        Ignored (colour kept as stored), as PIL's ``convert("RGB")`` and torchvision's readers do;
        composite the image over a background first if transparency matters.
    PIL images
        Decoded as :func:`decode_image` says (16-bit modes keep their 16 bits).

    Raises
    ------
    StimulusError
        Naming ``where`` (the stimulus id), for every image the rule refuses.
    """
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        arr = _pil_array(image, where)
    else:
        arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise StimulusError(f"{where}: not an image: an array of dtype {arr.dtype} and shape {arr.shape}")
    arr = _channels_last(arr, where, channels)
    arr = _unit_range(arr, value_range, where)
    c = arr.shape[-1]
    if c == 2:  # gray + alpha
        arr = arr[..., :1]
    elif c == 4:  # RGBA
        arr = arr[..., :3]
    return np.ascontiguousarray(arr, dtype=np.float32)


def _channels_last(arr: np.ndarray, where: str, channels: Channels | None = None) -> np.ndarray:
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3:
        if arr.shape[-1] in _CHANNELS and channels != "first":
            return arr
        if arr.shape[0] in _CHANNELS and channels != "last":
            return np.moveaxis(arr, 0, -1)
    expected = {"last": "(H, W) or (H, W, C)", "first": "(H, W) or (C, H, W)"}.get(
        channels or "", "(H, W), (H, W, C) or (C, H, W)")
    raise StimulusError(f"{where}: image of shape {arr.shape}; expected {expected} "
                        "with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)")


def _ambiguous_layout(shape: tuple[int, ...], where: str) -> StimulusError | None:
    """An error when ``shape`` (one image, or a stack of them) reads as channels last and as
    channels first (both axes 1..4: images at most 4 pixels on a side), else None."""
    if len(shape) not in (3, 4) or shape[-1] not in _CHANNELS or shape[-3] not in _CHANNELS:
        return None
    n = f"{shape[0]} images of " if len(shape) == 4 else ""
    last, first = shape[-3:-1], shape[-2:]
    return StimulusError(
        f"{where}: shape {shape} is ambiguous: channels last ({n}{last[0]}×{last[1]} px, {shape[-1]} "
        f"channels) or channels first ({n}{first[0]}×{first[1]} px, {shape[-3]} channels)? Say which: "
        "brainalign.as_stimulus_set(images, channels='last') or channels='first'")


def _unit_range(arr: np.ndarray, value_range: tuple[float, float] | None, where: str) -> np.ndarray:
    kind = arr.dtype.kind
    if value_range is None:
        if kind == "b":
            return arr.astype(np.float32)
        if arr.dtype == np.uint8:
            return arr.astype(np.float32) / np.float32(255)
        if arr.dtype == np.uint16:
            return arr.astype(np.float32) / np.float32(65535)
        if kind in "iu":
            raise StimulusError(
                f"{where}: integer pixels of dtype {arr.dtype} have no standard range; convert to "
                f"uint8 / uint16 or state the range, e.g. value_range=(0, 255)")
        lo, hi = 0.0, 1.0
    else:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise StimulusError(f"{where}: value_range={value_range!r} needs low < high")
    x = arr.astype(np.float32 if arr.dtype.itemsize <= 4 else np.float64)
    if x.size and not np.isfinite(x).all():
        raise StimulusError(f"{where}: pixel values include NaN or inf")
    if (lo, hi) != (0.0, 1.0):
        x = (x - lo) / (hi - lo)
    tol = 1e-5
    if x.size and (x.min() < -tol or x.max() > 1 + tol):
        vmin, vmax = float(arr.min()), float(arr.max())
        if value_range is None:
            raise StimulusError(
                f"{where}: float pixel values lie in {vmin:.4g}..{vmax:.4g}, outside 0..1; the range "
                "is ambiguous: state it, e.g. as_stimulus_set(images, value_range=(0, 255)), or "
                "scale the images to 0..1")
        raise StimulusError(f"{where}: pixel values {vmin:.4g}..{vmax:.4g} lie outside the stated "
                            f"value_range {tuple(value_range)}")
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


class ImageSource(Protocol):
    """Anything that gives the i-th image as an (H, W) or (H, W, C) array."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ZipImages:
    """Images decoded on demand from members of a zip file (JPEG, PNG, ...)."""

    path: Path
    members: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> np.ndarray:
        member = self.members[i]
        with zipfile.ZipFile(self.path) as zf:
            data = zf.read(member)
        return decode_image(io.BytesIO(data), f"{self.path}: image {member!r}")


@dataclass(frozen=True)
class FileImages:
    """Images decoded on demand from image files."""

    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return decode_image(self.paths[i], f"image file {self.paths[i]}")


@dataclass(frozen=True)
class StimulusSet:
    """An ordered set of stimuli.

    Parameters
    ----------
    name
        Identifier, e.g. ``"kriegeskorte2008"``.
    ids
        Unique stimulus ids, in order; responses and activations are aligned on them.
    images
        A sequence (or :class:`ImageSource`) of arrays: (H, W) grayscale or (H, W, 3) RGB,
        uint8 in 0..255 or float in 0..1.
    metadata
        One row per stimulus, in the same order (e.g. category labels).
    visual_degrees
        The stimulus' width in degrees of visual angle as shown to the subjects, if known.
    """

    name: str
    ids: tuple[str, ...]
    images: Sequence[np.ndarray] | ImageSource
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    visual_degrees: float | None = None

    def __post_init__(self) -> None:
        ids = tuple(str(i) for i in self.ids)
        object.__setattr__(self, "ids", ids)
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise StimulusError(f"stimulus set {self.name!r}: duplicate stimulus id {dup!r}")
        if len(self.images) != len(ids):
            raise StimulusError(
                f"stimulus set {self.name!r}: {len(ids)} ids but {len(self.images)} images"
            )
        meta = self.metadata
        if meta is None or meta.empty:
            meta = pd.DataFrame(index=pd.Index(ids, name="stimulus_id"))
        elif len(meta) != len(ids):
            raise StimulusError(
                f"stimulus set {self.name!r}: metadata has {len(meta)} rows for {len(ids)} stimuli"
            )
        else:
            meta = meta.reset_index(drop=True).set_index(pd.Index(ids, name="stimulus_id"))
        object.__setattr__(self, "metadata", meta)

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> np.ndarray:
        """The i-th image as an array (decoded on demand for lazy sources; a PIL image by the
        mode rules of :func:`decode_image`, so a palette image gives colours, not indices)."""
        item = self.images[i]
        if _is_pil(item):
            return _pil_array(item, f"stimulus {self.ids[i]!r}")
        return np.asarray(item)

    def subset(self, index: Sequence[int] | np.ndarray) -> StimulusSet:
        """The stimuli at positions ``index``, keeping their ids, metadata and provenance."""
        index = np.asarray(index, dtype=int)
        images = _Subset(self.images, tuple(int(i) for i in index))
        return StimulusSet(self.name, tuple(self.ids[i] for i in index), images,
                           self.metadata.iloc[index], self.visual_degrees)

    def content_hash(self) -> str:
        """sha256 over ids and pixels: equal hashes mean the same stimuli in the same order."""
        h = hashlib.sha256()
        for i, sid in enumerate(self.ids):
            img = np.ascontiguousarray(self.image(i))
            h.update(sid.encode())
            h.update(str((img.shape, img.dtype.str)).encode())
            h.update(img.tobytes())
        return h.hexdigest()

    @classmethod
    def from_arrays(cls, name: str, images: Sequence[np.ndarray] | np.ndarray,
                    ids: Sequence[str] | None = None, metadata: pd.DataFrame | None = None,
                    visual_degrees: float | None = None) -> StimulusSet:
        """A stimulus set from in-memory images; ids default to ``name/0000``, ``name/0001``, …"""
        n = len(images)
        ids = ids if ids is not None else [f"{name}/{i:04d}" for i in range(n)]
        return cls(name, tuple(ids), images, metadata if metadata is not None else pd.DataFrame(),
                   visual_degrees)

    @classmethod
    def from_zip(cls, name: str, path: PathLike, ids: Sequence[str] | None = None,
                 metadata: pd.DataFrame | None = None, visual_degrees: float | None = None,
                 suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"),
                 ) -> StimulusSet:
        """Images inside a zip file, in sorted member order; ids default to the file stems."""
        path = Path(path)
        with zipfile.ZipFile(path) as zf:
            members = sorted(m for m in zf.namelist()
                             if m.lower().endswith(suffixes) and not m.startswith("__MACOSX"))
        from brainalign.data.archives import check_members

        check_members(path, members)  # `../../x.png` or `/x.png` is refused, naming the member
        if ids is None:
            ids = [Path(m).stem for m in members]
        return cls(name, tuple(ids), ZipImages(path, tuple(members)),
                   metadata if metadata is not None else pd.DataFrame(), visual_degrees)


@dataclass(frozen=True)
class _Subset:
    base: Any
    index: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.base[self.index[i]]


@dataclass(frozen=True)
class ConvertedImages:
    """Images converted on access by :func:`image_array` (the one conversion rule), each error
    naming the stimulus id. Items may be arrays, PIL images or image file paths."""

    base: Any
    ids: tuple[str, ...]
    value_range: tuple[float, float] | None = None
    channels: Channels | None = None  # the layout of array items (files and PIL images: last)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> np.ndarray:
        item, where = self.base[i], f"stimulus {self.ids[i]!r}"
        channels = self.channels
        if isinstance(item, str | Path):
            item, channels = decode_image(item, f"{where} (file {item})"), "last"
        return image_array(item, value_range=self.value_range, where=where, channels=channels)


def _is_pil(x: Any) -> bool:
    return hasattr(x, "mode") and hasattr(x, "getbands")


def _file_ids(paths: Sequence[Path]) -> list[str]:
    """File stems as ids; two files with one stem are an error naming both."""
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise StimulusError(f"two stimulus files share the id {p.stem!r}: {seen[p.stem]} and {p}; "
                                "rename one or pass ids=")
        seen[p.stem] = p
    return list(seen)


def _image_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not any(part.startswith(".") or part == "__MACOSX"
                                for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise StimulusError(f"folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _array_images(arr: np.ndarray, channels: Channels | None = None) -> np.ndarray:
    """An image stack as (N, H, W[, C]) channels last; N×C×H×W is recognised by C in 1..4
    (a shape that reads both ways needs ``channels``)."""
    if arr.ndim == 4:
        if channels is None and (err := _ambiguous_layout(arr.shape, "stimulus array")):
            raise err
        if arr.shape[-1] in _CHANNELS and channels != "first":
            return arr
        if arr.shape[1] in _CHANNELS and channels != "last":
            return np.moveaxis(arr, 1, -1)
        if channels:
            layout = "N×H×W×C" if channels == "last" else "N×C×H×W"
            raise StimulusError(f"stimulus array of shape {arr.shape} is not {layout} with C = 1..4 "
                                f"channels (channels={channels!r})")
        raise StimulusError(f"stimulus array of shape {arr.shape}: neither N×H×W×C nor N×C×H×W "
                            "with C = 1..4 channels")
    if arr.ndim == 3:
        if channels is not None:  # one image in the stated layout
            return _channels_last(arr, "stimulus array", channels)[None]
        for axis, layout, said in ((-1, "(H, W, C)", "last"), (0, "(C, H, W)", "first")):
            # 1×H×W reads the same both ways: one gray image
            if arr.shape[axis] in _CHANNELS and not (axis == 0 and arr.shape[0] == 1):
                raise StimulusError(
                    f"stimulus array of shape {arr.shape} is ambiguous: one {layout} image or "
                    f"{arr.shape[0]} grayscale images? For one image say channels={said!r} (or pass "
                    "image[None]); for a gray stack pass N×H×W×1")
        return arr
    raise StimulusError(f"stimulus array of shape {arr.shape}; expected N×H×W×C, N×C×H×W or N×H×W")


def as_stimulus_set(stimuli: Any, *, name: str | None = None, ids: Sequence[str] | None = None,
                    value_range: tuple[float, float] | None = None,
                    visual_degrees: float | None = None, channels: Channels | None = None) -> StimulusSet:
    """A :class:`StimulusSet` from the usual ways of holding images.

    Accepted forms and the ids they get:

    - a :class:`StimulusSet` (returned as it is, unless ``value_range`` is given);
    - a folder of image files (searched recursively, sorted by relative path) or a zip of
      them: ids are the file stems (two files with one stem are an error);
    - a list of image file paths: ids are the file stems;
    - a list of PIL images or of image arrays: ids ``stim_0000``, ``stim_0001``, …;
    - an N×H×W×C or N×C×H×W array (C = 1..4; uint8, uint16, bool, or float in 0..1), an
      N×H×W grayscale stack, or one image (H×W×C or C×H×W) with ``channels`` given: ids
      ``stim_0000``, ….

    Every image then goes into a model by the one rule of :func:`image_array`; a float array
    outside 0..1 is refused unless ``value_range`` says what its values mean (e.g. ``(0, 255)``).
    ``ids`` overrides the derived ids. The ids are what activations and results are aligned on.

    ``channels`` (``"last"`` or ``"first"``) gives the layout of an array or of a list of arrays
    (a 3-D array is then one image). Without it the layout is read from the shape, and a shape
    that reads two ways is refused rather than guessed: a 4-D array of images at most 4 pixels on
    a side (3×3×3×3), or a 3-D array whose first or last axis could be colour channels (one
    3×32×32 image or three gray 32×32 images?).

    Raises
    ------
    StimulusError
        An empty input, a form not listed here, a folder without images, duplicate ids, an
        ambiguous layout, or pixel values the rule refuses (naming the first stimulus at fault).
    """
    if channels not in (None, "last", "first"):
        raise StimulusError(f"channels={channels!r}; use 'last' (…×H×W×C), 'first' (…×C×H×W) or None")
    vr = tuple(float(v) for v in value_range) if value_range is not None else None
    if isinstance(stimuli, StimulusSet):
        if vr is None:
            return stimuli
        return StimulusSet(name or stimuli.name, stimuli.ids, ConvertedImages(stimuli.images, stimuli.ids, vr),
                           stimuli.metadata, visual_degrees or stimuli.visual_degrees)
    files: list[Path] | None = None
    items: Any
    if isinstance(stimuli, str | Path):
        path = Path(stimuli)
        if path.is_dir():
            files = _image_files(path)
            name = name or path.name
        elif path.is_file() and path.suffix.lower() == ".zip":
            zs = StimulusSet.from_zip(name or path.stem, path, ids=ids, visual_degrees=visual_degrees)
            return StimulusSet(zs.name, zs.ids, ConvertedImages(zs.images, zs.ids, vr), zs.metadata,
                               visual_degrees)
        elif path.is_file():
            files = [path]
        else:
            raise StimulusError(f"stimuli {str(path)!r}: no such folder or file")
    elif hasattr(stimuli, "detach") and hasattr(stimuli, "numpy"):  # a torch tensor of images
        stimuli = stimuli.detach().cpu().numpy()
    if files is None and isinstance(stimuli, np.ndarray):
        items, channels = _array_images(stimuli, channels), "last"
        if vr is None and items.dtype.kind == "f" and items.size:
            per = items.reshape(len(items), -1)
            nonfinite = np.flatnonzero(~np.isfinite(per).all(1))
            if nonfinite.size:  # no value range would mend these: said as what they are
                i = int(nonfinite[0])
                sid = ids[i] if ids is not None else f"stim_{i:04d}"
                raise StimulusError(f"stimulus {sid!r}: pixel values include NaN or inf "
                                    f"({nonfinite.size} of {len(items)} stimuli)")
            bad = np.flatnonzero((per.min(1) < -1e-5) | (per.max(1) > 1 + 1e-5))
            if bad.size:
                i = int(bad[0])
                sid = ids[i] if ids is not None else f"stim_{i:04d}"
                raise StimulusError(
                    f"stimulus {sid!r}: float pixel values lie in {np.nanmin(per[i]):.4g}.."
                    f"{np.nanmax(per[i]):.4g}, outside 0..1 ({bad.size} of {len(items)} stimuli); the "
                    "range is ambiguous: state it, e.g. value_range=(0, 255), or scale to 0..1 "
                    "(inputs already preprocessed for the model go in as a torch tensor)")
    elif files is None and isinstance(stimuli, Sequence) and not isinstance(stimuli, str | bytes):
        items = list(stimuli)
        if items and all(isinstance(x, str | Path) for x in items):
            files = [Path(x) for x in items]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise StimulusError(f"stimulus files not found: {missing[:5]}")
        elif not all(_is_pil(x) or isinstance(x, np.ndarray) for x in items):
            kinds = sorted({type(x).__name__ for x in items})
            raise StimulusError(f"a list of stimuli must hold file paths, PIL images or arrays, not {kinds}")
        elif channels is None:
            for i, x in enumerate(items):
                where = f"stimulus {ids[i] if ids is not None and i < len(ids) else f'stim_{i:04d}'!r}"
                if isinstance(x, np.ndarray) and (err := _ambiguous_layout(x.shape, where)):
                    raise err
    elif files is None:
        raise StimulusError(
            f"cannot use a {type(stimuli).__name__} as stimuli; give a StimulusSet, a folder of "
            "images, a list of paths, PIL images or arrays, or an N×H×W×C / N×C×H×W array")
    meta = pd.DataFrame()
    if files is not None:
        items = [str(f) for f in files]
        derived = _file_ids(files)
        meta = pd.DataFrame({"file": items})
    else:
        derived = [f"stim_{i:04d}" for i in range(len(items))]
    if len(items) == 0:
        raise StimulusError("no stimuli: the input is empty")
    sid = tuple(str(i) for i in ids) if ids is not None else tuple(derived)
    if len(sid) != len(items):
        raise StimulusError(f"{len(sid)} ids for {len(items)} stimuli")
    return StimulusSet(name or "stimuli", sid, ConvertedImages(items, sid, vr, channels), meta, visual_degrees)
