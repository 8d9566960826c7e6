"""Place stimuli in a model's field of view according to their size in degrees of visual angle.

A benchmark states how large its stimuli were for the subjects (``visual_degrees``); a model
states the field of view its input spans (``BrainModel.visual_degrees``, 8° by default). As in
Brain-Score, a stimulus smaller than the field is shrunk into the centre of a grey canvas
(a 4° stimulus in an 8° field fills the central half), and a larger one is centre-cropped to
the part that falls inside the field. The model's own preprocessing then resizes the canvas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from brainalign.data.stimuli import StimulusSet
from brainalign.errors import StimulusError

GREY = 0.5  # background, as a fraction of the full pixel range


@dataclass(frozen=True)
class Placement:
    """How stimuli were placed in the model's field of view (recorded in results).

    Attributes
    ----------
    stimulus_degrees
        Stimulus width in degrees as shown to the subjects (``None``: unknown, shown full-field).
    model_degrees
        Width of the model's field of view in degrees.
    fraction
        ``stimulus_degrees / model_degrees``: the part of the field the stimulus spans.
    mode
        ``"pad"`` (smaller than the field: grey border), ``"crop"`` (larger: centre kept) or
        ``"none"`` (same size, or the size is unknown).
    background
        Grey level of the border as a fraction of the pixel range.
    """

    stimulus_degrees: float | None
    model_degrees: float
    fraction: float
    mode: str
    background: float = GREY

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.mode == "none":
            return f"full field ({self.model_degrees:g}°)"
        return (f"{self.stimulus_degrees:g}° stimulus in a {self.model_degrees:g}° field: "
                f"{self.mode} to {self.fraction:.3g} of the field")


def placement(stimulus_degrees: float | None, model_degrees: float,
              background: float = GREY) -> Placement:
    """The placement of a ``stimulus_degrees`` stimulus in a ``model_degrees`` field."""
    if model_degrees is None or model_degrees <= 0:
        raise StimulusError(f"model field of view must be a positive number of degrees, got {model_degrees}")
    if stimulus_degrees is None:
        return Placement(None, float(model_degrees), 1.0, "none", background)
    if stimulus_degrees <= 0:
        raise StimulusError(f"stimulus size must be a positive number of degrees, got {stimulus_degrees}")
    frac = float(stimulus_degrees) / float(model_degrees)
    mode = "none" if np.isclose(frac, 1.0) else ("pad" if frac < 1 else "crop")
    return Placement(float(stimulus_degrees), float(model_degrees), frac, mode, background)


def place_image(image: np.ndarray, how: Placement) -> np.ndarray:
    """One (H, W[, C]) image placed in the field: padded with grey or centre-cropped.

    The output keeps the image's resolution (pixels per degree) and dtype, so no resampling
    happens here; the model's preprocessing resizes the result once.
    """
    img = np.asarray(image)
    if how.mode == "none":
        return img
    h, w = img.shape[:2]
    if how.mode == "pad":
        H, W = round(h / how.fraction), round(w / how.fraction)
        fill = round(how.background * 255) if img.dtype == np.uint8 else how.background
        canvas = np.full((H, W, *img.shape[2:]), fill, dtype=img.dtype)
        top, left = (H - h) // 2, (W - w) // 2
        canvas[top:top + h, left:left + w] = img
        return canvas
    H, W = max(1, round(h / how.fraction)), max(1, round(w / how.fraction))
    top, left = (h - H) // 2, (w - W) // 2
    return img[top:top + H, left:left + W]


@dataclass(frozen=True)
class _PlacedImages:
    base: Any
    how: Placement

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> np.ndarray:
        return place_image(np.asarray(self.base[i]), self.how)


def place_stimuli(stimuli: StimulusSet, model_degrees: float,
                  stimulus_degrees: float | None = None) -> tuple[StimulusSet, Placement]:
    """The stimulus set as the model sees it, and how it was placed.

    Parameters
    ----------
    stimuli
        The benchmark's stimuli.
    model_degrees
        The model's field of view (``BrainModel.visual_degrees``).
    stimulus_degrees
        Stimulus width in degrees; defaults to ``stimuli.visual_degrees``.
    """
    deg = stimulus_degrees if stimulus_degrees is not None else stimuli.visual_degrees
    how = placement(deg, model_degrees)
    if how.mode == "none":
        return stimuli, how
    placed = StimulusSet(stimuli.name, stimuli.ids, _PlacedImages(stimuli.images, how),
                         stimuli.metadata.reset_index(drop=True), stimuli.visual_degrees)
    return placed, how
