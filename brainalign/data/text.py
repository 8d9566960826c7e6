"""Sentence stimuli: a :class:`StimulusSet` whose items are strings, for language models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from brainalign.data.stimuli import StimulusSet
from brainalign.errors import StimulusError


def sentence_stimuli(name: str, sentences: Sequence[str], ids: Sequence[str] | None = None,
                     metadata: pd.DataFrame | None = None) -> StimulusSet:
    """A stimulus set of sentences; ``stimuli.image(i)`` gives the i-th as a 0-d string array.

    Text models (``hf:`` with a tokenizer) tokenise each sentence; image models refuse them
    with a :class:`~brainalign.errors.StimulusError`. Ids default to ``name/0000``, ….
    """
    items = []
    for i, s in enumerate(sentences):
        if not isinstance(s, str) or not s.strip():
            raise StimulusError(f"sentence stimuli {name!r}: item {i} is not a non-empty string: {s!r}")
        items.append(np.asarray(s))
    meta = metadata.copy() if metadata is not None else pd.DataFrame({"sentence": list(sentences)})
    if "sentence" not in meta:
        meta = meta.assign(sentence=list(sentences))
    return StimulusSet.from_arrays(name, items, ids=ids, metadata=meta)


def describe_stimuli(stimuli: StimulusSet, template: str = "a photo of a {category}",
                     name: str | None = None) -> StimulusSet:
    """Sentences made from each stimulus' metadata (``template`` names metadata columns), with
    the same ids: e.g. the 92 images of Kriegeskorte et al. (2008) as "a photo of a human face"."""
    meta = stimuli.metadata
    try:
        sentences = [template.format(**row) for row in meta.to_dict("records")]
    except KeyError as err:
        raise StimulusError(f"template {template!r} names {err}, not a metadata column of "
                            f"{stimuli.name!r} (columns: {list(meta.columns)})") from err
    return sentence_stimuli(name or f"{stimuli.name}-sentences", sentences, ids=stimuli.ids,
                            metadata=meta.reset_index(drop=True))
