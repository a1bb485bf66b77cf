"""`vfi retime`: write a video at any higher constant frame rate, new frames at their own time t.

Timing (exact, in Fractions of seconds from the first frame):
  * output frame k sits at k / RATE; there are round(D * RATE) of them, D being the input's
    duration including its last frame's own duration, so the output lasts as long as the input;
  * an output time equal to an input frame's time copies that frame; any other one between
    input frames i and i+1 is synthesized at t = (k / RATE - t_i) / (t_{i+1} - t_i) in (0, 1);
    output times past the last input frame repeat it (it has no right neighbour);
  * constant-rate input times are snapped to the 1 / input-rate grid (containers round
    timestamps, e.g. to milliseconds in Matroska, so "equal" must be decided on the grid);
    variable-rate input uses its real timestamps.
A pair of input frames across a scene cut, or repeating a frame, gets copies of the nearer
original instead of synthesized frames. `vfi double` is the t = 1/2 case: with --factor 2,
retime writes the same frames (same noise keys, same copies).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from vfi_cli.errors import VfiError
from vfi_cli.interpolator import Interpolator
from vfi_cli.pipeline import (DoubleOptions, DoubleSummary, _BackgroundWriter, check_damage, classify_pairs,
                              open_writer, pairs_per_call)
from vfi_cli.media.reader import FrameReader
from vfi_cli.media.probe import VideoInfo, probe

MAX_DENOMINATOR = 1001  # output rates are kept to fractions like 60000/1001 (container time bases)
KEY_SHIFT = 40  # noise key of the j-th new frame of input pair i: (j << KEY_SHIFT) + i (j = 0: `vfi double`'s)


class RateError(VfiError):
    """--fps / --factor is malformed, or not above the input's frame rate."""


def parse_rate(text: str, what: str) -> Fraction:
    """'60000/1001', '59.94', '3' -> an exact positive Fraction; RateError otherwise."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise RateError(f"{what} must be a number or a fraction such as 60000/1001, not {text!r}") from None
    if value <= 0:
        raise RateError(f"{what} must be positive, not {text!r}")
    return value


def target_rate(info: VideoInfo, fps: Fraction | None = None, factor: Fraction | None = None) -> Fraction:
    """The output frame rate for --fps or --factor (exactly one); RateError unless it is above
    the input's rate (a lower rate drops frames: that is not interpolation)."""
    if (fps is None) == (factor is None):
        raise RateError("give exactly one of --fps RATE and --factor X")
    src = Fraction(info.frame_rate)
    if factor is not None and factor <= 1:
        raise RateError(f"--factor must be above 1, not {float(factor):g}")
    rate = fps if fps is not None else src * factor
    if rate.denominator > MAX_DENOMINATOR:
        rate = rate.limit_denominator(MAX_DENOMINATOR)
    if rate <= src:
        raise RateError(f"{info.path}: --fps {float(rate):.6g} is not above the input's {float(src):.6g} fps "
                        "(retime only adds frames; lowering the rate would drop them)")
    return rate


@dataclass(frozen=True)
class Slot:
    """One output frame: copy of input frame `pair` (t = 0) or new between `pair` and `pair` + 1."""

    k: int  # output index: time k / rate from the first frame
    pair: int  # global index of the left input frame
    t: Fraction  # 0 (a copy) or in (0, 1)
    j: int = 0  # ordinal among the new frames of this pair (noise key)


def slots_between(t0: Fraction, t1: Fraction, rate: Fraction, pair: int) -> list[Slot]:
    """Output slots with t0 <= k / rate < t1, input frames `pair` at t0 and `pair` + 1 at t1."""
    first, stop = math.ceil(t0 * rate), math.ceil(t1 * rate)
    out, j = [], 0
    for k in range(first, stop):
        t = (k / rate - t0) / (t1 - t0)
        out.append(Slot(k, pair, t, j if t else 0))
        j += t != 0
    return out


class Timeline:
    """Places decoded frames on an exact time line relative to the first frame."""

    def __init__(self, info: VideoInfo):
        self.grid = None if info.vfr else Fraction(info.frame_rate)  # constant rate: snap to its grid
        self.tick = Fraction(info.time_base)
        self.info = info
        self.origin: Fraction | None = None  # first frame's time (seconds in the reader's clock)
        self.last: Fraction | None = None
        self.step: Fraction | None = None  # the last frame-to-frame step

    def _exact(self, seconds: float) -> Fraction:
        """A float time back to its exact multiple of the stream time base."""
        return Fraction(seconds).limit_denominator(self.tick.denominator)

    def _snap(self, t: Fraction) -> Fraction:
        return t if self.grid is None else round(t * self.grid) / self.grid

    def place(self, seconds: float) -> Fraction | None:
        """Relative exact time of the next frame, or None when it does not come after the last one."""
        exact = self._exact(seconds)
        if self.origin is None:
            self.origin = exact
        t = self._snap(exact - self.origin)
        if self.last is not None and t <= self.last:
            return None
        if self.last is not None:
            self.step = t - self.last
        self.last = t
        return t

    def end(self) -> Fraction:
        """End of the last frame: the probed duration when it covers the frames, else one more step."""
        fallback = self.last + (self.step or (1 / self.grid if self.grid else Fraction(1, 25)))
        if self.info.duration is None:
            return fallback
        end = self._snap(self._exact(self.info.duration))
        return end if end > self.last else fallback


@dataclass(frozen=True)
class RetimeOptions(DoubleOptions):
    """`vfi double`'s options (its `times` is unused) plus the output rate."""

    rate: Fraction = Fraction(0)  # output frames per second (from target_rate)


@dataclass
class _Chunk:
    """Consecutive input frames (the first shared with the previous chunk) and their times."""

    frames: list[np.ndarray]  # each [H, W, 3] uint8 (uint16 for sources above 8 bits)
    times: list[Fraction]
    first: int  # global index of frames[0]


class _Synth:
    """Turns the slots of one chunk into frames: copies, or batched model calls at each slot's t."""

    def __init__(self, interp: Interpolator, opts: RetimeOptions, summary: DoubleSummary, batch: int):
        self.interp, self.opts, self.summary, self.batch = interp, opts, summary, batch

    def _time(self, stage: str, t0: float) -> None:
        st = self.summary.stage_seconds
        st[stage] = st.get(stage, 0.0) + time.perf_counter() - t0

    def run(self, chunk: _Chunk, slots: list[Slot]) -> list[np.ndarray]:
        """Frames [H, W, 3] (uint8, or uint16 above 8 bits) for `slots` (all inside the chunk), in order."""
        t0 = time.perf_counter()
        stack = np.stack(chunk.frames)  # [N, H, W, 3]
        dup, cut = classify_pairs(stack, self.opts.scene_threshold)  # [N-1] each
        self._time("scene check", t0)
        self.summary.duplicates += int(dup.sum())
        self.summary.cuts += int(cut.sum())
        out: list[np.ndarray | None] = []
        need: list[int] = []  # positions in `slots` to synthesize
        for n, s in enumerate(slots):
            i = s.pair - chunk.first
            if s.t == 0:
                out.append(chunk.frames[i])
            elif dup[i] or cut[i]:
                out.append(chunk.frames[i if s.t <= Fraction(1, 2) else i + 1])  # the nearer original
            else:
                out.append(None)
                need.append(n)
        if need:
            t0 = time.perf_counter()
            codes = self.interp.encode(stack)  # every frame of the chunk uploaded once
            self._time("upload frames", t0)
            for lo in range(0, len(need), self.batch):
                part = [slots[n] for n in need[lo:lo + self.batch]]
                left = torch.as_tensor([s.pair - chunk.first for s in part], dtype=torch.long)
                t = torch.tensor([float(s.t) for s in part], dtype=torch.float32)  # [B]
                keys = [(s.j << KEY_SHIFT) + s.pair for s in part]
                new = self.interp.middles(codes.select(left), codes.select(left + 1), keys,
                                          timings=self.summary.stage_seconds, dtype=stack.dtype,
                                          t=t)  # [B, H, W, 3] at the frames' precision
                for n, frame in zip(need[lo:lo + self.batch], new):
                    out[n] = frame
            self.summary.synthesized += len(need)
        return out  # type: ignore[return-value]


def _chunks(reader: FrameReader, timeline: Timeline, size: int, summary: DoubleSummary) -> Iterator[_Chunk]:
    """Chunks of up to `size` + 1 frames, each starting with the previous chunk's last frame."""
    chunk = _Chunk([], [], 0)
    for frame in reader:
        summary.frames_in += 1
        t = timeline.place(frame.time)
        if t is None:  # a timestamp that does not advance: the frame cannot be placed
            continue
        chunk.frames.append(frame.rgb)
        chunk.times.append(t)
        if len(chunk.frames) == size + 1:
            yield chunk
            chunk = _Chunk(chunk.frames[-1:], chunk.times[-1:], chunk.first + size)
    if len(chunk.frames) > 1 or chunk.first == 0 and chunk.frames:  # (a 1-frame video is one chunk)
        yield chunk


def retime_video(input: Path, output: Path, interp: Interpolator, opts: RetimeOptions,
                 on_progress: Callable[[int, int | None], None] | None = None) -> DoubleSummary:
    """Write OUTPUT at opts.rate (constant), as long as INPUT, audio copied; returns counts."""
    start = time.perf_counter()
    info = probe(input)
    rate = target_rate(info, fps=opts.rate)
    summary = DoubleSummary(frames_expected=info.num_frames)
    check_damage(info.damage, opts, summary)
    # constant-rate output: the writer keeps times on the exact 1 / rate grid
    writer = open_writer(input, output, info, rate, opts, like=dataclasses.replace(info, vfr=False))
    summary.notes = list(writer.notes)
    batch = pairs_per_call(info, opts)
    synth = _Synth(interp, opts, summary, batch)
    timeline = Timeline(info)
    with writer, FrameReader(input, strict=not opts.allow_damaged, high_depth=True) as reader:
        out = _BackgroundWriter(writer)
        try:
            last: _Chunk | None = None
            for chunk in _chunks(reader, timeline, batch, summary):
                slots = [s for i in range(len(chunk.frames) - 1)
                         for s in slots_between(chunk.times[i], chunk.times[i + 1], rate, chunk.first + i)]
                for s, frame in zip(slots, synth.run(chunk, slots)):
                    out.put(frame, timeline.origin + s.k / rate)
                summary.frames_out += len(slots)
                last = chunk
                if on_progress:
                    on_progress(summary.frames_in, info.num_frames)
            check_damage(reader.damage(info), opts, summary)
            # from the last input frame to the end: repeat it (no right neighbour)
            first = math.ceil(timeline.last * rate)
            stop = max(round(timeline.end() * rate), first + (summary.frames_out == 0))
            for k in range(first, stop):
                out.put(last.frames[-1], timeline.origin + k / rate)
            summary.frames_out += stop - first
            if on_progress:
                on_progress(summary.frames_in, summary.frames_in)
        finally:
            out.close()
        summary.stage_seconds["encode video (thread)"] = out.busy
        summary.corrupt_packets = reader.corrupt_packets
    summary.seconds = time.perf_counter() - start
    return summary
