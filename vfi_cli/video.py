"""Video I/O with PyAV: probe a file, decode frames in a background thread, check paths.

The public API of video I/O lives here (VideoWriter, default_codec and
SUPPORTED_CONTAINERS are re-exported from video_writer.py). This module,
video_writer.py and video_audio.py are the only places that import av.
Frames are HxWx3 uint8 RGB in the stream's stored orientation (rotation is
reported and copied as a tag, never applied). Every user-facing failure is an
InputError/OutputError with one line naming the file.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vfi_cli.errors import InputError, OutputError
from vfi_cli.video_writer import SUPPORTED_CONTAINERS, VideoWriter, default_codec

log = logging.getLogger(__name__)

COLOR_KEYS = ("color_primaries", "color_trc", "colorspace", "color_range")
# swscale's default YUV->RGB path darkens by ~1 level on average (a colour cast);
# accurate rounding with full chroma interpolation removes that bias.
_Interp = av.video.reformatter.Interpolation
SWS_FLAGS = _Interp.BILINEAR | _Interp.ACCURATE_RND | _Interp.FULL_CHR_H_INT


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


def _open_input(path: Path) -> av.container.InputContainer:
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


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first real video stream (cover-art pictures are skipped)."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise InputError(f"{path}: no video stream")


@dataclass
class _PacketScan:
    count: int = 0
    start: int | None = None
    end: int | None = None
    deltas: tuple[int, int] | None = None  # (min, max) pts step between frames


def _scan_packets(container: av.container.InputContainer, stream: av.VideoStream) -> _PacketScan:
    """Demux (no decoding) the video packets: count, pts span and frame-step spread."""
    pts: list[int] = []
    end = None
    try:
        for p in container.demux(stream):
            if p.pts is None or p.size == 0:
                continue
            pts.append(p.pts)
            e = p.pts + (p.duration or 0)
            end = e if end is None else max(end, e)
    except av.error.FFmpegError:
        pass  # truncated/corrupt tail: keep what was scanned
    scan = _PacketScan(count=len(pts))
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
    with _open_input(path) as c:
        vs = _video_stream(c, path)
        try:
            for frame in c.decode(vs):
                return int(round(frame.rotation or 0))
        except av.error.FFmpegError:
            pass
        return 0


def probe(path: Path | str) -> VideoInfo:
    """Describe the first video stream of `path`; InputError if it is missing or not a video."""
    path = Path(path)
    with _open_input(path) as c:
        vs = _video_stream(c, path)
        cc = vs.codec_context
        tb = vs.time_base or Fraction(1, 90000)
        meta_rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        header_frames, stream_duration, container_duration = vs.frames, vs.duration, c.duration
        width, height, codec = cc.width, cc.height, cc.name
        color = {k: int(getattr(cc, k)) for k in COLOR_KEYS}
        has_audio = bool(c.streams.audio)
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
    )


@dataclass
class Frame:
    """One decoded frame."""

    rgb: np.ndarray  # HxWx3 uint8
    time: float  # presentation time in seconds since the video stream's start


_END = object()


class FrameReader:
    """Iterate the frames of a video as `Frame`s, decoding in a background thread.

    A bounded queue keeps memory flat. Packets the decoder rejects are skipped,
    counted in `corrupt_packets` and logged; a truncated file yields what it has.
    A file with no decodable frame raises InputError. Use as a context manager
    (closing stops the thread) or just iterate to the end.
    """

    def __init__(self, path: Path | str, max_frames: int | None = None, queue_size: int = 8):
        self.path = Path(path)
        self.max_frames = max_frames
        self.corrupt_packets = 0
        self.frames_read = 0
        self._container = _open_input(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
        except InputError:
            self._container.close()
            raise
        self._stream.thread_type = "AUTO"
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._done = False
        self._queued = 0
        self._thread = threading.Thread(target=self._decode_loop, name="vfi-decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Put into the queue unless stopped; False when the reader was closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode_loop(self) -> None:
        """Worker thread: demux + decode into the queue; always ends with _END."""
        vs = self._stream
        self._start = vs.start_time
        self._last_time: float | None = None
        self._step = float(1 / (vs.average_rate or vs.guessed_rate or 25))
        try:
            for packet in self._container.demux(vs):
                try:
                    frames = vs.decode(packet)
                except av.error.FFmpegError as e:
                    self._corrupt(e)
                    continue
                if not self._emit(frames):
                    return
        except av.error.FFmpegError as e:  # the demuxer gave up (truncated/corrupt container)
            self._corrupt(e)
            try:
                self._emit(vs.decode(None))  # flush the frames the decoder still holds
            except av.error.FFmpegError as e2:
                self._corrupt(e2)
        except Exception as e:  # noqa: BLE001 - handed to the consumer thread, re-raised there
            self._put(e)
        finally:
            self._put(_END)

    def _emit(self, frames: list[av.VideoFrame]) -> bool:
        """Queue decoded frames as RGB; False once the reader is closed or max_frames reached."""
        for f in frames:
            if f.pts is None:
                t = 0.0 if self._last_time is None else self._last_time + self._step
            else:
                if self._start is None:
                    self._start = f.pts
                t = float((f.pts - self._start) * self._stream.time_base)
            self._last_time = t
            if not self._put(Frame(f.to_ndarray(format="rgb24", interpolation=SWS_FLAGS), t)):
                return False
            self._queued += 1
            if self.max_frames is not None and self._queued >= self.max_frames:
                return False
        return True

    def _corrupt(self, e: Exception) -> None:
        self.corrupt_packets += 1
        if self.corrupt_packets <= 3:
            log.warning("%s: skipping a corrupt packet (%s)", self.path, e)

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> Frame:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, Frame):
            self.frames_read += 1
            return item
        self.close()
        if isinstance(item, Exception):
            raise InputError(f"{self.path}: cannot decode: {item}") from item
        if self.frames_read == 0:
            raise InputError(f"{self.path}: no decodable video frames")
        raise StopIteration

    def close(self) -> None:
        """Stop the decoder thread and close the file (idempotent)."""
        if self._done:
            return
        self._done = True
        self._stop.set()
        self._thread.join()
        self._container.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_paths(input: Path | str, output: Path | str, overwrite: bool) -> None:
    """Fail early, before any work, if `input` cannot be read or `output` cannot be written."""
    input, output = Path(input), Path(output)
    if not input.exists():
        raise InputError(f"{input}: no such file")
    if input.is_dir():
        raise InputError(f"{input}: is a directory, not a video file")
    if output.resolve() == input.resolve() or (output.exists() and os.path.samefile(output, input)):
        raise OutputError(f"{output}: output is the input file; choose another output path")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give an output file name")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: already exists; pass --overwrite to replace it")
    parent = output.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"{output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: directory {parent} is not writable")
    default_codec(output)


__all__ = [
    "SUPPORTED_CONTAINERS",
    "Frame",
    "FrameReader",
    "VideoInfo",
    "VideoWriter",
    "check_paths",
    "default_codec",
    "probe",
]
