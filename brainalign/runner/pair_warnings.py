"""The warnings one model × benchmark pair raised: caught as data where the pair is scored, and
summed into a few lines for the user.

``brainalign score`` catches them around each pair; ``brainalign batch`` catches them in the
process or thread that scores a pair (:func:`collect_warnings` in
:func:`~brainalign.runner.batch.run_pair`) and returns them in the pair's outcome, so a worker
process or a Dask worker prints nothing of its own and both commands print the same lines
(:func:`warning_lines`).
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_ALPHA_EDGE = re.compile(r"for (\d+) of (\d+) neuroids the chosen α is mostly at an end of the grid (\[[^\]]*\])"
                         r"(?: \((\d+) at the low end, (\d+) at the high end\))?")


def warning_lines(caught: Iterable[warnings.WarningMessage | str], where: str) -> list[str]:
    """The warnings one model × benchmark raised (caught ``WarningMessage``\\ s or their message
    texts), as few lines: every ridge fit's "chosen α at an end of the grid" (one per layer,
    session and fold set: dozens on V1/V4) summed into one line that says how to widen the grid;
    any other warning once, however often it came. ``where`` names the pair ("model × benchmark")."""
    lines, edge, seen = [], [], set()
    for w in caught:
        text = str(w.message) if isinstance(w, warnings.WarningMessage) else str(w)
        m = _ALPHA_EDGE.search(text)
        if m:
            edge.append(m)
        elif text not in seen:
            seen.add(text)
            lines.append("warning: " + "\n    ".join(text.splitlines() or [""]))
    if edge:
        n, total = sum(int(m[1]) for m in edge), sum(int(m[2]) for m in edge)
        grids = ", ".join(dict.fromkeys(m[3] for m in edge))
        split = all(m[4] is not None for m in edge)  # messages that say which end (all of this library's)
        low = sum(int(m[4]) for m in edge) if split else None
        said = f"{n} of {total} neuroid fits"
        if split:
            said += f"; {low} at the low end, {n - low} at the high end"
        how = []
        if split and n - low:
            how.append("at the high end the strongest shrinkage won, as it does for neuroids the features "
                       "barely predict")
        ends = " (downwards for the low end, upwards for the high end)" if split else ""
        how.append(f"to extend the grid{ends}, copy the benchmark's YAML, set `alphas:` under `metric:` and pass "
                   "the copy to --benchmark")
        # "mostly" is per neuroid (its α at an end in most folds), not of the neuroids: say it so.
        lines.insert(0, f"warning: {where}: in {len(edge)} ridge fit(s), the chosen α was at an end of the "
                        f"grid {grids} in most folds for some neuroids ({said}); " + "; ".join(how))
    return lines


class _WarningRouter:
    """Sends each warning to the collector of the thread that raised it.

    ``warnings.catch_warnings`` swaps process-wide state and is not thread-safe (Python < 3.14): two
    Dask threads scoring pairs at once would each restore the other's hook and lose or mix up
    warnings. So one hook is installed while any collector is open, and it routes by thread. A
    warning from a thread without a collector (a helper thread of the pair: extraction, ceilings)
    goes to the only open collector, or, when several are open, is shown as before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[int, list[str]] = {}
        self._saved: Any = None  # the catch_warnings that restores the filters and hook at the end
        self._show_before: Any = None  # the hook it replaced, for warnings no collector takes

    def _show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: TextIO | None = None, line: str | None = None) -> None:
        sinks = self._sinks
        sink = sinks.get(threading.get_ident())
        if sink is None and len(sinks) == 1:
            sink = next(iter(sinks.values()), None)
        if sink is not None:
            sink.append(str(message))
        else:
            self._show_before(message, category, filename, lineno, file, line)

    @contextmanager
    def collect(self) -> Iterator[list[str]]:
        me, sink = threading.get_ident(), []
        with self._lock:
            outer = self._sinks.get(me)  # a collector already open in this thread (nested)
            if not self._sinks:
                self._saved = warnings.catch_warnings()
                self._saved.__enter__()
                self._show_before = warnings.showwarning
                # Every occurrence, not once per code location: the α-edge counts are summed.
                warnings.simplefilter("always")
                warnings.showwarning = self._show
            self._sinks[me] = sink
        try:
            yield sink
        finally:
            with self._lock:
                if outer is not None:
                    self._sinks[me] = outer
                else:
                    del self._sinks[me]
                if not self._sinks:
                    self._saved.__exit__(None, None, None)
                    self._saved = None


# One per process: it guards the process-wide warnings hook, which is global state already.
_ROUTER = _WarningRouter()


@contextmanager
def summed_warnings(where: str) -> Iterator[None]:
    """Re-issue the warnings raised in the block summed as :func:`warning_lines` sums them (a
    regression benchmark's ridge fits warn once per layer and session: dozens), as one
    ``UserWarning`` per line, when the block ends (also by an error). ``where``: "model × benchmark"."""
    caught: list[str] = []
    try:
        with collect_warnings() as caught:
            yield
    finally:
        for line in warning_lines(caught, where):
            warnings.warn(line.removeprefix("warning: "), stacklevel=3)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect, as message texts, the warnings raised while the block runs in this thread (and
    its helper threads while no other thread collects), instead of printing them. Safe in
    several threads at once (Dask's threaded workers score pairs side by side).

    Yields
    ------
    list of str
        The message of every warning caught, in order, filled as they come.
    """
    with _ROUTER.collect() as sink:
        yield sink
