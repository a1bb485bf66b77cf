"""double_frame_rate(): stream a video through the Interpolator and write it at 2^K x the frame rate.

Frames travel at the source's precision: uint8, or uint16 RGB (16-bit scale) when the
source has more than 8 bits per sample. A damaged input (vfi_cli.media.integrity) is an
InputError unless `allow_damaged`, and then it is reported in the summary.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vfi_cli.errors import InputError
from vfi_cli.frames import CUT_THRESHOLD, DUPLICATE_TOLERANCE, duplicate_pairs, scene_cuts, thumbnails
from vfi_cli.media.integrity import ALLOW_HINT
from vfi_cli.interpolator import Encoded, Interpolator
from vfi_cli.media.reader import FrameReader
from vfi_cli.media.probe import VideoInfo, probe
from vfi_cli.media.writer import VideoWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoubleOptions:
    """How to run `vfi double` (model settings live in the Interpolator)."""

    times: int = 1  # output rate = input rate * 2**times
    batch_size: int = 4  # pairs per model call (capped by max_batch_pixels)
    max_batch_pixels: int = 2_500_000  # pairs x H x W per model call: bounds peak memory on 4K
    scene_threshold: float = CUT_THRESHOLD  # mean luma change (levels) gating the cut test
    codec: str | None = None
    crf: int = 17
    preset: str = "medium"
    lossless: bool = False
    overwrite: bool = False
    allow_damaged: bool = False  # process what is readable of a truncated/corrupt input (still reported)


@dataclass
class DoubleSummary:
    frames_in: int = 0
    frames_out: int = 0
    synthesized: int = 0  # middles produced by the model
    cuts: int = 0  # pairs across a scene cut (middle = copy)
    duplicates: int = 0  # pairs of identical frames (middle = copy, no model call)
    corrupt_packets: int = 0
    damage: str | None = None  # what is wrong with the input (only with allow_damaged)
    notes: list[str] = field(default_factory=list)  # output precision reduced by the encoder, etc.
    frames_expected: int | None = None  # input frames the container declares (for progress)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def classify_pairs(stack: np.ndarray, scene_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive pairs of frames [N, H, W, 3] -> (duplicate, scene cut) bool [N-1] each (a
    duplicate pair is never also a cut): the pairs whose new frames are copies, not synthesized."""
    thumbs = thumbnails(stack)
    dup = duplicate_pairs(thumbs, tolerance=DUPLICATE_TOLERANCE)  # [N-1]
    cut = scene_cuts(stack, threshold=scene_threshold, thumbs=thumbs) & ~dup
    return dup, cut


def check_damage(damage: str | None, opts: DoubleOptions, summary: DoubleSummary) -> None:
    """A damaged input (what integrity found, or None) is an error unless --allow-damaged, which
    records it in the summary (the CLI warns)."""
    if damage is None:
        return
    if not opts.allow_damaged:
        raise InputError(f"{damage}; {ALLOW_HINT}")
    summary.damage = damage


def pairs_per_call(info: VideoInfo, opts: DoubleOptions) -> int:
    """Most frame pairs per model call: --batch-size, capped by max_batch_pixels for big frames."""
    return max(1, min(opts.batch_size, opts.max_batch_pixels // max(1, info.width * info.height)))


def open_writer(input: Path, output: Path, info: VideoInfo, rate: Fraction, opts: DoubleOptions,
                like: VideoInfo | None = None) -> VideoWriter:
    """The output VideoWriter at `rate` with INPUT's audio, colour and rotation (`like`: the
    VideoInfo whose tags and timing mode it copies, default `info`)."""
    return VideoWriter(output, info.width, info.height, rate, codec=opts.codec, crf=opts.crf,
                       preset=opts.preset, lossless=opts.lossless,
                       audio_from=Path(input) if info.has_audio else None, like=like or info,
                       overwrite=opts.overwrite)


class _BackgroundWriter:
    """Runs VideoWriter.write in a thread so encoding overlaps the model; re-raises its errors."""

    def __init__(self, writer: VideoWriter, maxsize: int = 32):
        self.writer = writer
        self.q: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.busy = 0.0
        self.thread = threading.Thread(target=self._loop, name="vfi-encode", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None:
                try:
                    t = time.perf_counter()
                    self.writer.write(*item)
                    self.busy += time.perf_counter() - t
                except BaseException as e:  # surfaced in put()/close() on the main thread
                    self.error = e

    def put(self, rgb: np.ndarray, t: float, duration: float | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((rgb, t, duration))

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Doubler:
    """Per-level state: synthesizes middles for consecutive frames, uploading each frame once."""

    def __init__(self, interp: Interpolator, opts: DoubleOptions, summary: DoubleSummary, batch: int):
        self.interp, self.opts, self.summary = interp, opts, summary
        self.batch = batch  # most pairs per model call (bounds memory at every level)
        self.pair_key = [0] * opts.times  # global pair counter per level (noise seeds)
        self.timings = summary.stage_seconds

    def _time(self, stage: str, t0: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def middles(self, frames: list[np.ndarray], level: int, carry: Encoded | None) -> tuple[list[np.ndarray], Encoded | None]:
        """Middles of the len(frames)-1 consecutive pairs; returns them and the last frame's encoding."""
        t0 = time.perf_counter()
        stack = np.stack(frames)  # [N, H, W, 3]
        dup, cut = classify_pairs(stack, self.opts.scene_threshold)
        self._time("scene check", t0)
        if level == 0:  # deeper levels only re-find the copies made here
            self.summary.duplicates += int(dup.sum())
            self.summary.cuts += int(cut.sum())
        need = np.flatnonzero(~dup & ~cut)
        out = [frames[i].copy() for i in range(len(frames) - 1)]  # copies of the earlier frame
        key0 = (level << 40) + self.pair_key[level]  # pair i's noise key is key0 + i (distinct per level)
        self.pair_key[level] += len(frames) - 1
        if len(need) == 0:
            return out, None
        last = None
        for lo in range(0, len(frames) - 1, self.batch):  # at most self.batch pairs per call
            hi = min(lo + self.batch, len(frames) - 1)
            part = need[(need >= lo) & (need < hi)]
            if len(part) == 0:
                continue
            t0 = time.perf_counter()
            if lo == 0 and carry is not None:
                codes = Encoded.cat([carry, self.interp.encode(stack[1:hi + 1])])
            else:
                codes = self.interp.encode(stack[lo:hi + 1])
            self._time("upload frames", t0)
            idx = torch.as_tensor(part - lo, dtype=torch.long)
            mids = self.interp.middles(codes.select(idx), codes.select(idx + 1), [key0 + int(i) for i in part],
                                       timings=self.timings, dtype=stack.dtype)  # at the frames' precision
            for j, i in enumerate(part):
                out[i] = mids[j]
            if hi == len(frames) - 1:
                last = codes.select(slice(len(codes) - 1, len(codes)))
        self.summary.synthesized += len(need)
        return out, last

    def expand(self, frames: list[np.ndarray], times: list[float], carry: Encoded | None):
        """Apply all levels to a chunk: returns frames/times with 2^K - 1 new ones per gap."""
        new_carry = None
        for level in range(self.opts.times):
            mids, last = self.middles(frames, level, carry if level == 0 else None)
            if level == 0:
                new_carry = last
            f2, t2 = [], []
            for i in range(len(frames) - 1):
                f2 += [frames[i], mids[i]]
                t2 += [times[i], 0.5 * (times[i] + times[i + 1])]
            frames, times = f2 + [frames[-1]], t2 + [times[-1]]
        return frames, times, new_carry


def double_frame_rate(input: Path, output: Path, interp: Interpolator, opts: DoubleOptions = DoubleOptions(),
                      on_progress: Callable[[int, int | None], None] | None = None) -> DoubleSummary:
    """Write OUTPUT with 2^K x the frames of INPUT (same duration, audio copied); returns counts.

    `on_progress(frames_done, frames_total)` counts input frames (total None when unknown).
    """
    start = time.perf_counter()
    info = probe(input)
    summary = DoubleSummary(frames_expected=info.num_frames)
    check_damage(info.damage, opts, summary)
    factor = 2 ** opts.times
    rate = Fraction(info.frame_rate) * factor

    writer = open_writer(input, output, info, rate, opts)
    summary.notes = list(writer.notes)
    batch = pairs_per_call(info, opts)
    doubler = _Doubler(interp, opts, summary, batch)
    with writer, FrameReader(input, strict=not opts.allow_damaged, high_depth=True) as reader:
        out = _BackgroundWriter(writer)
        try:
            chunk: list[np.ndarray] = []
            times: list[float] = []
            carry: Encoded | None = None
            decode_t = time.perf_counter()
            if on_progress:
                on_progress(0, info.num_frames)
            for frame in reader:
                summary.frames_in += 1
                chunk.append(frame.rgb)
                times.append(frame.time)
                if len(chunk) < batch + 1:
                    continue
                doubler._time("decode (wait)", decode_t)
                frames, ftimes, carry = doubler.expand(chunk, times, carry)
                for f, t in zip(frames[:-1], ftimes[:-1]):
                    out.put(f, t)
                summary.frames_out += len(frames) - 1
                if on_progress:
                    on_progress(summary.frames_in - 1, info.num_frames)
                chunk, times = chunk[-1:], times[-1:]
                decode_t = time.perf_counter()
            check_damage(reader.damage(info), opts, summary)
            if len(chunk) > 1:
                frames, ftimes, carry = doubler.expand(chunk, times, carry)
            else:
                frames, ftimes = chunk, times
            # The last input frame keeps its own duration (VFR too): its 2^K copies share it.
            last = reader.end_time - times[-1]
            if not last > 0:
                last = 1.0 / float(info.frame_rate)
            for f, t in zip(frames[:-1], ftimes[:-1]):
                out.put(f, t)
            for j in range(factor):
                out.put(frames[-1], ftimes[-1] + j * last / factor, last / factor)
            summary.frames_out += len(frames) + factor - 1
            if on_progress:
                on_progress(summary.frames_in, summary.frames_in)
        finally:
            out.close()
        summary.stage_seconds["encode video (thread)"] = out.busy
        summary.corrupt_packets = reader.corrupt_packets
    summary.seconds = time.perf_counter() - start
    return summary
