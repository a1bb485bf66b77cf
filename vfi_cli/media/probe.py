"""Describe an input video (PyAV): geometry, exact rate, timing, pixel precision, colour, damage.

In: a path. Out: a frozen VideoInfo (exact Fraction rate and time base, frame count, duration,
colour tags, rotation, what the container declares), or one InputError line naming the file.
`probe` demuxes the whole file once (no decoding) to count packets and measure timestamps;
that scan also finds a truncated file before any frame is decoded (vfi_cli.media.integrity
has the rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container

from vfi_cli.errors import InputError
from vfi_cli.media.integrity import UNTIMED_FORMATS, Declared, Readable, damage_message

COLOR_KEYS = ("color_primaries", "color_trc", "colorspace", "color_range")


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video (first video stream)."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction  # average rate; measured from timestamps when metadata disagrees
    time_base: Fraction  # of the video stream
    num_frames: int | None  # best estimate (container count, else counted packets), None if unknown
    duration: float | None  # seconds, first frame start to last frame end
    codec: str  # decoder name, e.g. "h264"
    has_audio: bool
    rotation: int  # display-matrix rotation in degrees (FFmpeg convention, counter-clockwise), 0 if none
    color: dict[str, Any] = field(default_factory=dict)  # COLOR_KEYS -> FFmpeg enum ints, copied to the output
    vfr: bool = False  # frame durations differ (beyond timestamp rounding)
    pix_fmt: str = "yuv420p"  # the decoder's pixel format
    bit_depth: int = 8  # bits per sample of the source (the pipeline carries 16 bits when > 8)
    chroma: str = "420"  # "420" | "422" | "444" (RGB sources count as 444) | "440" | "411" | "410"
    declared: Declared = field(default_factory=Declared)  # what the container says (for the damage check)
    damage: str | None = None  # a damage message from the packet scan, None when it looks whole
    other_streams_end: float | None = None  # seconds after the video start where audio etc. end


def open_input(path: Path) -> av.container.InputContainer:
    """Open `path` for reading, mapping every failure to one InputError line."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: not a readable video file ({e.strerror or type(e).__name__})") from e
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from e


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first real video stream (cover-art pictures are skipped)."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise InputError(f"{path}: no video stream")


def pixel_layout(pix_fmt: str | None, width: int, height: int) -> tuple[int, str]:
    """(bits per sample, chroma "420"/"422"/"444"/...) of an FFmpeg pixel format; (8, "420") if unknown."""
    try:
        fmt = av.VideoFormat(pix_fmt or "yuv420p", max(width, 2), max(height, 2))
    except (ValueError, av.error.FFmpegError):
        return 8, "420"
    comps = fmt.components
    bits = max(c.bits for c in comps)
    chroma = [c for c in comps if c.is_chroma]
    if fmt.is_rgb or not chroma:
        return bits, "444"
    cw, ch = chroma[0].width, chroma[0].height
    w, h = max(width, 2), max(height, 2)
    sub = {(1, 1): "444", (2, 1): "422", (2, 2): "420", (1, 2): "440", (4, 1): "411", (4, 4): "410"}
    return bits, sub.get((round(w / cw), round(h / ch)), "420")


@dataclass
class _PacketScan:
    count: int = 0
    start: int | None = None
    end: int | None = None
    deltas: tuple[int, int] | None = None  # (min, max) pts step between frames
    bad: int = 0  # demux errors and packets flagged corrupt
    first_bad: int | None = None  # pts near the first bad packet
    other_end: float | None = None  # seconds: latest packet end of the other streams


def _scan_packets(container: av.container.InputContainer, stream: av.VideoStream) -> _PacketScan:
    """Demux (no decoding) every packet: video count, pts span, frame-step spread, damage signs."""
    pts: list[int] = []
    end = None
    scan = _PacketScan()
    try:
        for p in container.demux():
            if p.pts is None or p.size == 0:
                continue
            if p.stream.index != stream.index:
                e = float((p.pts + (p.duration or 0)) * p.time_base)
                scan.other_end = e if scan.other_end is None else max(scan.other_end, e)
                continue
            if p.is_corrupt:
                scan.bad += 1
                scan.first_bad = p.pts if scan.first_bad is None else scan.first_bad
            pts.append(p.pts)
            e = p.pts + (p.duration or 0)
            end = e if end is None else max(end, e)
    except av.error.FFmpegError:  # truncated/corrupt tail: keep what was scanned
        scan.bad += 1
        if scan.first_bad is None and end is not None:
            scan.first_bad = end
    scan.count = len(pts)
    if pts:
        pts.sort()
        scan.start, scan.end = pts[0], end
        steps = [b - a for a, b in zip(pts, pts[1:])]
        if steps:
            scan.deltas = (min(steps), max(steps))
            if end == pts[-1]:  # no packet durations: assume the last frame lasts a median step
                scan.end = end + sorted(steps)[len(steps) // 2]
    return scan


def _rotation(path: Path) -> int:
    """Display rotation of the first decoded frame (FFmpeg attaches the stream's display matrix)."""
    with open_input(path) as c:
        vs = video_stream(c, path)
        try:
            for frame in c.decode(vs):
                return int(round(frame.rotation or 0))
        except av.error.FFmpegError:
            pass
        return 0


def _tag_seconds(text: str | None) -> float | None:
    """Matroska's per-stream DURATION tag ("00:00:01.333000000") in seconds."""
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", (text or "").strip())
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


def _declared(c: av.container.InputContainer, vs: av.VideoStream, tb: Fraction) -> Declared:
    """The video duration/frame count the container states (not bit-rate guesses)."""
    if c.format.name in UNTIMED_FORMATS:
        return Declared()
    frames = vs.frames or None
    if vs.duration:
        return Declared(float(vs.duration * tb), frames)
    tag = _tag_seconds(vs.metadata.get("DURATION"))
    if tag:
        return Declared(tag, frames)
    if c.duration:
        start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        begin = c.start_time / 1_000_000 if c.start_time is not None else 0.0
        return Declared(c.duration / 1_000_000 - (start - begin), frames, container_only=True)
    return Declared(None, frames)


def probe(path: Path | str) -> VideoInfo:
    """Describe the first video stream of `path`; InputError if it is missing or not a video."""
    path = Path(path)
    with open_input(path) as c:
        vs = video_stream(c, path)
        cc = vs.codec_context
        tb = vs.time_base or Fraction(1, 90000)
        meta_rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        header_frames, stream_duration, container_duration = vs.frames, vs.duration, c.duration
        width, height, codec = cc.width, cc.height, cc.name
        pix_fmt = cc.format.name if cc.format is not None else None
        color = {k: int(getattr(cc, k)) for k in COLOR_KEYS}
        if pix_fmt and pix_fmt.startswith("yuvj"):
            color["color_range"] = 2  # JPEG pixel formats are full range whatever the tag says
        has_audio = bool(c.streams.audio)
        declared = _declared(c, vs, Fraction(tb))
        scan = _scan_packets(c, vs)
    rotation = _rotation(path)
    # Packets actually present win over the header's count (a truncated file has fewer).
    counts = [n for n in (header_frames, scan.count) if n]
    num_frames = min(counts) if counts else None
    duration = None
    if scan.start is not None and scan.end is not None and scan.end > scan.start:
        duration = float((scan.end - scan.start) * tb)
    elif stream_duration:
        duration = float(stream_duration * tb)
    elif container_duration:
        duration = container_duration / 1_000_000
    rate = Fraction(meta_rate) if meta_rate else None
    if scan.count > 1 and duration:
        measured = scan.count / duration  # timestamps, when the metadata disagrees (VFR, broken headers)
        if rate is None or abs(float(rate) - measured) > 0.01 * measured:
            rate = Fraction(measured).limit_denominator(1001)
    if not rate:
        raise InputError(f"{path}: cannot determine the frame rate")
    vfr = False
    if scan.deltas is not None:
        lo, hi = scan.deltas
        vfr = hi - lo > max(1, 0.02 * hi)  # 1 tick of jitter is timestamp rounding (e.g. 1/1000 in mkv)
    first_bad = other_end = None
    start_s = float(scan.start * tb) if scan.start is not None else 0.0
    if scan.first_bad is not None:
        first_bad = max(0.0, float(scan.first_bad * tb) - start_s)
    if scan.other_end is not None:
        other_end = scan.other_end - start_s
    readable = Readable(duration=duration or 0.0, frames=scan.count, bad=scan.bad, first_bad=first_bad,
                        other_streams_end=other_end)
    bits, chroma = pixel_layout(pix_fmt, width, height)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        frame_rate=rate,
        time_base=Fraction(tb),
        num_frames=num_frames,
        duration=duration,
        codec=codec,
        has_audio=has_audio,
        rotation=rotation,
        color=color,
        vfr=vfr,
        pix_fmt=pix_fmt or "yuv420p",
        bit_depth=bits,
        chroma=chroma,
        declared=declared,
        damage=damage_message(path, declared, readable, float(rate)),
        other_streams_end=other_end,
    )
