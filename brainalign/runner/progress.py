"""Progress of a batch: bars on a terminal, plain log lines otherwise, and a closing summary."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


class _Progress:
    """Where progress goes: tqdm bars on a terminal, plain timestamped lines otherwise (so logs of
    cluster jobs stay readable).

    Parameters
    ----------
    stream
        Where to write (default ``sys.stderr``).
    bars
        Force bars on or off; default: bars when ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.bars = bool(getattr(self.stream, "isatty", lambda: False)()) if bars is None else bars
        self.t0 = time.perf_counter()


class BatchProgress(_Progress):
    """Per-model (pairs) and per-layer progress of ``brainalign batch``: on a terminal two bars
    (pairs, and layers of the pair running in this process), else one line per event."""

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        super().__init__(stream, bars)
        self.total = self.done = self.failed = self.skipped = 0
        self._pairs: Any = None
        self._layers: Any = None

    def _line(self, text: str) -> None:
        print(f"[brainalign batch {time.perf_counter() - self.t0:7.1f}s] {text}", file=self.stream,
              flush=True)

    def note(self, text: str) -> None:
        """A message for the user (a warning, what --resume will recompute), as its own line(s)."""
        if self._pairs is not None:  # above the bars, not through them (a pair's warnings come mid-run)
            self._pairs.write(text, file=self.stream)
        else:
            self._line(text)

    def start(self, total: int, skipped: int) -> None:
        self.total, self.skipped = total, skipped
        if self.bars:
            from tqdm.auto import tqdm

            self._pairs = tqdm(total=total, initial=skipped, desc="models × benchmarks", unit="pair",
                               file=self.stream, position=0)
        self._line(f"{total} pairs, {skipped} already finished, {total - skipped} to run")

    def pair_started(self, label: str, n_layers: int | None = None) -> None:
        if self.bars:
            from tqdm.auto import tqdm

            if self._layers is not None:
                self._layers.close()
            self._layers = tqdm(total=n_layers, desc=label, unit="layer", file=self.stream,
                                position=1, leave=False)
        elif not self.bars:
            self._line(f"start {label}")

    def layer_done(self, label: str, layer: str, done: int, total: int) -> None:
        if self._layers is not None:
            self._layers.update(1)
            self._layers.set_postfix_str(layer)
        elif not self.bars:
            self._line(f"  {label}: layer {done}/{total} {layer} scored")

    def pair_done(self, label: str, ok: bool, seconds: float, detail: str = "") -> None:
        self.done += 1
        self.failed += not ok
        if self._pairs is not None:
            self._pairs.update(1)
            self._pairs.set_postfix(failed=self.failed)
        status = "done" if ok else "FAILED"
        n = self.skipped + self.done
        took = f" in {seconds:.1f}s" if math.isfinite(seconds) else ""  # unknown: said as nothing, not "nans"
        msg = f"[{n}/{self.total}] {status} {label}{took}"
        if self.bars:
            if not ok:
                self._pairs.write(f"{msg}: {detail}", file=self.stream)
        else:
            self._line(msg + (f": {detail}" if detail else ""))

    def close(self, kept: int = 0) -> str:
        """Close the bars and write the summary line (``kept``: earlier pairs of the output
        folder that this run left as they were); returns it."""
        for bar in (self._layers, self._pairs):
            if bar is not None:
                bar.close()
        also = f", {kept} earlier pair(s) not in this run kept" if kept else ""
        summary = (f"summary: {self.total} pairs: {self.done - self.failed} scored, "
                   f"{self.skipped} skipped (already finished), {self.failed} failed{also}, "
                   f"{time.perf_counter() - self.t0:.1f}s")
        self._line(summary)
        return summary


def _eta(since_first: float, done: int, total: int) -> str:
    """The time left from the measured rate of layers after the first (``since_first``: seconds
    from the first layer's end to the ``done``-th's). The first layer's time is not a rate: it
    holds the forward pass that records a whole group of layers at once, so dividing by it
    overestimated the rest many times over; with one layer done there is no estimate yet."""
    if done < 2 or total <= done:
        return ""
    left = since_first / (done - 1) * (total - done)
    return f", about {left:.0f}s left" if left < 120 else f", about {left / 60:.1f} min left"


class ScoreProgress(_Progress):
    """Progress of ``brainalign score``: every stage (reading the data, recording each layer,
    scoring each layer) with a time estimate.

    On a terminal a tqdm bar per (model, benchmark) counts the layers scored (with tqdm's rate
    and remaining time; the extraction's own bar shows each forward pass); otherwise each event
    is one plain line with the estimate.
    """

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        super().__init__(stream, bars)
        self._bar: Any = None
        self._label = ""
        self._started = 0.0
        self._first_done: float | None = None  # when the pair's first layer was scored

    def line(self, text: str) -> None:
        """One plain line, written above any bar."""
        msg = f"[brainalign score {time.perf_counter() - self.t0:6.1f}s] {text}"
        if self._bar is not None:
            self._bar.write(msg, file=self.stream)
        else:
            print(msg, file=self.stream, flush=True)

    def stage(self, text: str) -> None:
        """A stage starts (reading a benchmark's data, loading a model, …)."""
        self.line(text)

    def pair_started(self, model: str, benchmark: str, layers: list[str]) -> None:
        """Recording and scoring of ``layers`` of ``model`` on ``benchmark`` starts."""
        self.close_bar()
        self._label, self._started = f"{model} × {benchmark}", time.perf_counter()
        self._first_done = None
        if self.bars:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(layers), desc=self._label, unit="layer", file=self.stream,
                             leave=False, smoothing=0)
        self.line(f"{self._label}: recording and scoring {len(layers)} layer(s)"
                  + (f" ({layers[0]} … {layers[-1]})" if len(layers) > 1 else f" ({layers[0]})"))

    def layer_done(self, layer: str, done: int, total: int) -> None:
        """``layer`` has been recorded and scored (the benchmarks' ``on_layer`` callback)."""
        now = time.perf_counter()
        first = self._first_done is None
        if first:
            self._first_done = now
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if first:  # the bar's rate (smoothing=0: layers / seconds) counts from here, as _eta
                self._bar.initial, self._bar.start_t = self._bar.n, time.time()
            self._bar.set_postfix_str(f"scored {layer}")
            return
        self.line(f"  {self._label}: layer {done}/{total} {layer} recorded and scored"
                  f"{_eta(now - self._first_done, done, total)}")

    def pair_done(self, ok: bool, detail: str = "") -> None:
        self.close_bar()
        took = time.perf_counter() - self._started
        status = "done" if ok else "FAILED"
        self.line(f"{self._label}: {status} in {took:.1f}s" + (f": {detail}" if detail else ""))

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
