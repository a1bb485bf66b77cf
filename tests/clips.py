"""Tiny synthetic videos for tests, written and inspected directly with PyAV.

`make_clip` writes a deterministic moving pattern (a bright square moving 2 px per
frame over a colour gradient), optionally with a sine audio track, irregular
(VFR) timestamps or a display-matrix rotation. `read_all_frames` decodes every
frame to RGB and `clip_facts` gathers timestamps and durations for assertions.
Only tests import this module; product code goes through vfi_cli.video.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48000
# Frame durations (in 1/1000 s) cycled by vfr=True: irregular but deterministic.
VFR_STEPS_MS = (40, 40, 80, 20, 60, 40, 100, 40)


def pattern_frame(i: int, width: int, height: int, pattern: str = "moving") -> np.ndarray:
    """Frame `i` of a test pattern as HxWx3 uint8 RGB.

    "moving": gradient background + 8x8 bright square moving 2 px/frame right
    (wrapping) and 1 px/frame down. "static": the gradient only. "noise": seeded
    uniform noise (a different image each frame, e.g. for scene cuts).
    """
    if pattern == "noise":
        return np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = (xs * 255 // max(width - 1, 1)).astype(np.uint8)
    img[..., 1] = (ys * 255 // max(height - 1, 1)).astype(np.uint8)
    img[..., 2] = 64
    if pattern == "static":
        return img
    if pattern != "moving":
        raise ValueError(f"unknown pattern {pattern!r}")
    size = min(8, width, height)
    x0 = (2 * i) % max(width - size + 1, 1)
    y0 = i % max(height - size + 1, 1)
    img[y0 : y0 + size, x0 : x0 + size] = (250, 240, 230)
    return img


def deep_pattern(i: int, width: int, height: int) -> np.ndarray:
    """Frame `i` as HxWx3 uint16 RGB with fine gradients (values an 8-bit file cannot hold)."""
    ys, xs = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.uint16)
    img[..., 0] = (xs * 65535 // max(width - 1, 1)).astype(np.uint16)
    img[..., 1] = (ys * 65535 // max(height - 1, 1)).astype(np.uint16)
    img[..., 2] = 20000 + 64 * i
    return img


def cut_file(path: Path | str, fraction: float = 0.5, name: str | None = None) -> Path:
    """Copy the first `fraction` of `path`'s bytes to `name` (default: cut_NAME) beside it: a truncated file."""
    path = Path(path)
    data = path.read_bytes()
    out = path.with_name(name or f"cut_{path.name}")
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def _default_codec(path: Path) -> str:
    ext = path.suffix.lower()
    if ext == ".mkv":
        return "ffv1"
    if ext == ".webm":
        return "libvpx-vp9"
    return "libx264"


def _pix_fmt(codec: str, width: int, height: int) -> str:
    if codec == "ffv1":
        return "bgr0"  # RGB stored losslessly: decoded pixels equal the pattern exactly
    if codec == "libx264rgb":
        return "bgr0"
    if width % 2 or height % 2:
        return "yuv444p"
    return "yuv420p"


def _frame_pts(n_frames: int, fps: Fraction, vfr: bool) -> tuple[list[int], list[int], Fraction]:
    """Presentation timestamps, frame durations and their time base."""
    if vfr:
        steps = [VFR_STEPS_MS[i % len(VFR_STEPS_MS)] for i in range(n_frames)]
        pts = [sum(steps[:i]) for i in range(n_frames)]
        return pts, steps, Fraction(1, 1000)
    return list(range(n_frames)), [1] * n_frames, 1 / Fraction(fps)


def clip_duration(n_frames: int, fps: Fraction = Fraction(25), vfr: bool = False) -> float:
    """Nominal video duration (s) of a clip written by make_clip with these arguments."""
    if vfr:
        return sum(VFR_STEPS_MS[i % len(VFR_STEPS_MS)] for i in range(n_frames)) / 1000
    return float(n_frames / Fraction(fps))


def make_clip(
    path: Path | str,
    n_frames: int = 12,
    width: int = 32,
    height: int = 32,
    fps: Fraction = Fraction(25),
    codec: str | None = None,
    audio: bool = False,
    vfr: bool = False,
    rotation: int = 0,
    pattern: str = "moving",
    start: float = 0.0,
    pix_fmt: str | None = None,
    color: dict[str, int] | None = None,
    faststart: bool = False,
) -> Path:
    """Write a synthetic clip and return its path.

    Codec by extension unless given: .mkv -> ffv1 (bgr0, bit-exact RGB), .mp4/.mov ->
    libx264 yuv420p (yuv444p when a side is odd), .webm -> libvpx-vp9. `audio` adds a
    440 Hz sine of the video's duration (AAC in mp4/mov, FLAC in mkv, Opus in webm).
    `vfr` uses irregular timestamps (VFR_STEPS_MS). `rotation` writes a display
    matrix via VideoStream.set_display_rotation (PyAV >= 15). `start` (seconds)
    offsets every timestamp, video and audio alike (like a cut from a broadcast).
    `pix_fmt` overrides the stored pixel format (e.g. "yuv420p10le", "yuv444p"; the
    pattern is then written from 16-bit RGB so >8-bit formats get real 10-bit values);
    `color` sets codec colour tags (color_primaries, color_trc, colorspace, color_range);
    `faststart` puts an MP4's index first (so a file cut short still opens).
    """
    path = Path(path)
    codec = codec or _default_codec(path)
    fps = Fraction(fps)
    pts, durations, tb = _frame_pts(n_frames, fps, vfr)
    pts = [p + round(Fraction(start) / tb) for p in pts]
    duration = clip_duration(n_frames, fps, vfr)
    frame_durations = dict(zip(pts, durations))
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = pix_fmt or _pix_fmt(codec, width, height)
        for key, value in (color or {}).items():
            setattr(vs.codec_context, key, value)
        vs.codec_context.time_base = tb
        vs.time_base = tb
        if codec.startswith("libx264"):
            vs.options = {"crf": "10", "preset": "ultrafast"}
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if audio:
            acodec = {".mkv": "flac", ".webm": "libopus"}.get(path.suffix.lower(), "aac")
            aus = out.add_stream(acodec, rate=AUDIO_RATE)
            aus.layout = "mono"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height, pattern), format="rgb24")
            if pix_fmt is not None:
                frame = av.VideoFrame.from_ndarray(deep_pattern(i, width, height), format="rgb48le")
            frame.pts = pts[i]
            frame.time_base = tb
            _mux_with_durations(out, vs.encode(frame), frame_durations)
        _mux_with_durations(out, vs.encode(None), frame_durations)
        if aus is not None:
            _write_sine(out, aus, duration, start)
    return path


def _mux_with_durations(out: av.container.OutputContainer, packets: list, durations: dict[int, int]) -> None:
    """Mux packets, setting each one's duration from its pts (encoders drop frame durations)."""
    for p in packets:
        if p.pts is not None and p.pts in durations:
            p.duration = durations[p.pts]
        out.mux(p)


def _write_sine(out: av.container.OutputContainer, stream: av.AudioStream, duration: float, start: float) -> None:
    """Encode `duration` seconds of a 440 Hz sine into `stream`, starting at `start` seconds."""
    fmt = stream.codec_context.codec.audio_formats[0].name
    n_total = round(duration * AUDIO_RATE)
    chunk = stream.codec_context.frame_size or 1024
    t = np.arange(n_total) / AUDIO_RATE
    wave = 0.3 * np.sin(2 * np.pi * 440 * t)
    start_pts = round(start * AUDIO_RATE)
    for i0 in range(0, n_total, chunk):
        part = wave[i0 : i0 + chunk]
        if fmt.startswith("s16"):
            data = (part * 32767).astype(np.int16)[None, :]
        else:
            data = part.astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start_pts + i0
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


_I = av.video.reformatter.Interpolation
SWS_FLAGS = _I.BILINEAR | _I.ACCURATE_RND | _I.FULL_CHR_H_INT  # as vfi_cli.video: no YUV->RGB bias


def read_all_frames(path: Path | str, deep: bool = False) -> list[np.ndarray]:
    """Decode every video frame of the first video stream as HxWx3 uint8 RGB (uint16 rgb48 if `deep`)."""
    with av.open(str(path)) as c:
        if deep:
            return [f.to_ndarray(format="rgb48le", interpolation=_I.BILINEAR | _I.ACCURATE_RND)
                    for f in c.decode(video=0)]
        return [f.to_ndarray(format="rgb24", interpolation=SWS_FLAGS) for f in c.decode(video=0)]


@dataclass
class ClipFacts:
    """What tests assert about a written file (times in seconds)."""

    num_frames: int
    pts: list[int]  # presentation timestamps of decoded frames, in time_base
    times: list[float]  # pts * time_base, relative to the first frame
    time_base: Fraction
    average_rate: Fraction | None  # stream metadata
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    video_start: float  # first video packet pts, seconds
    video_duration: float  # last pts - first pts + last packet duration
    audio_codec: str | None
    audio_start: float | None  # first audio packet pts, seconds
    audio_duration: float | None  # same as video_duration, from the first audio stream's packets
    rotation: int  # from the decoded frames' display matrix, 0 if none


def _packets_span(container: av.container.InputContainer, stream: av.stream.Stream) -> tuple[float, float]:
    """(start, duration) in seconds of a stream's packets."""
    first, end = None, None
    for p in container.demux(stream):
        if p.pts is None:
            continue
        first = p.pts if first is None else min(first, p.pts)
        e = p.pts + (p.duration or 0)
        end = e if end is None else max(end, e)
    if first is None:
        return 0.0, 0.0
    return float(first * stream.time_base), float((end - first) * stream.time_base)


def clip_facts(path: Path | str) -> ClipFacts:
    """Timestamps, rate, durations and codecs of the first video (and audio) stream."""
    path = str(path)
    with av.open(path) as c:
        vs = c.streams.video[0]
        frames = list(c.decode(vs))
        pts = [f.pts for f in frames]
        rotation = int(frames[0].rotation) if frames else 0
        tb = vs.time_base
        info = dict(
            codec=vs.codec_context.name,
            pix_fmt=vs.codec_context.pix_fmt,
            width=vs.width,
            height=vs.height,
            average_rate=vs.average_rate,
            audio_codec=c.streams.audio[0].codec_context.name if c.streams.audio else None,
        )
    with av.open(path) as c:
        vstart, vdur = _packets_span(c, c.streams.video[0])
    astart = adur = None
    if info["audio_codec"] is not None:
        with av.open(path) as c:
            astart, adur = _packets_span(c, c.streams.audio[0])
    return ClipFacts(
        num_frames=len(frames),
        pts=pts,
        times=[float((p - pts[0]) * tb) for p in pts],
        time_base=tb,
        video_start=vstart,
        video_duration=vdur,
        audio_start=astart,
        audio_duration=adur,
        rotation=rotation,
        **info,
    )
