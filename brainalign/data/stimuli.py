"""Stimulus sets: ordered stimulus ids, the images, per-stimulus metadata and the size in degrees."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from brainalign.errors import StimulusError
from brainalign.settings import PathLike


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
        from PIL import Image

        member = self.members[i]
        with zipfile.ZipFile(self.path) as zf:
            data = zf.read(member)
        try:
            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))
        except Exception as err:
            raise StimulusError(f"{self.path}: image {member!r} failed to decode: {err}") from err


@dataclass(frozen=True)
class FileImages:
    """Images decoded on demand from image files."""

    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as im:
                return np.asarray(im.convert("RGB"))
        except Exception as err:
            raise StimulusError(f"image file {self.paths[i]} failed to decode: {err}") from err


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
        """The i-th image as an array (decoded on demand for lazy sources)."""
        return np.asarray(self.images[i])

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
