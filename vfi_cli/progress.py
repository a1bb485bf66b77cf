"""The progress line of `vfi double` and `vfi retime`: input frames done/total, the rate change spelled out, speed, ETA."""

from __future__ import annotations

import time
from fractions import Fraction

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


def _fps(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


class DoublingProgress:
    """Context manager; `update(done, total)` counts input frames (total None while unknown).

    Reads e.g. ``doubling 25 -> 50 fps  [bar]  input frames 12/40  3.1 input frames/s  ETA 0:00:09``;
    before the first frame it says "starting" rather than an unlabelled 0/?.
    """

    def __init__(self, console: Console, rate: Fraction, factor: int | Fraction, disable: bool = False,
                 verb: str = "doubling"):
        self._t0 = time.perf_counter()
        label = f"{verb} {_fps(rate)} -> {_fps(rate * factor)} fps"
        self._progress = Progress(TextColumn(label, markup=False), BarColumn(), TextColumn("{task.fields[count]}"),
                                  TextColumn("{task.fields[speed]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                  console=console, disable=disable, transient=True)
        self._task = self._progress.add_task("double", total=None, count="starting", speed="")

    def update(self, done: int, total: int | None) -> None:
        count = f"input frames {done}/{total}" if total else f"input frames {done}"
        elapsed = time.perf_counter() - self._t0
        speed = f"{done / elapsed:.2f} input frames/s" if done and elapsed > 0 else ""
        self._progress.update(self._task, completed=done, total=total, count=count, speed=speed)

    def __enter__(self) -> DoublingProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)
