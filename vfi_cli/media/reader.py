"""Decode a video's frames with PyAV in a background thread (FrameReader).

In: a path (and optionally a frame limit, strict damage handling, the source's precision).
Out: `Frame`s in presentation order with their times in seconds. Frames are HxWx3 RGB in the stream's stored orientation (rotation is reported and
copied as a tag, never applied): uint8, or uint16 (full 16-bit scale) when the reader
is asked for the source's precision and the source has more than 8 bits. Every
user-facing failure is an InputError/OutputError with one line naming the file.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vfi_cli.errors import InputError
from vfi_cli.media.integrity import ALLOW_HINT, Readable, damage_message
from vfi_cli.media.probe import VideoInfo, open_input, video_stream

log = logging.getLogger(__name__)
# swscale's default YUV->RGB path darkens by ~1 level on average (a colour cast);
# accurate rounding with full chroma interpolation removes that bias.
_Interp = av.video.reformatter.Interpolation
SWS_FLAGS = _Interp.BILINEAR | _Interp.ACCURATE_RND | _Interp.FULL_CHR_H_INT
# ... except from >8-bit sources: FFmpeg 8's full chroma interpolation into RGB is broken there
# (10-bit 4:2:0 -> rgb48 comes out tens of levels off); plain accurate rounding is within 0.2.
SWS_FLAGS_DEEP = _Interp.BILINEAR | _Interp.ACCURATE_RND


@dataclass
class Frame:
    """One decoded frame."""

    rgb: np.ndarray  # HxWx3 uint8, or uint16 (0..65535) for a >8-bit source read with high_depth
    time: float  # presentation time in seconds since the video stream's start


_END = object()


class FrameReader:
    """Iterate the frames of a video as `Frame`s, decoding in a background thread.

    A bounded queue keeps memory flat. By default packets the decoder rejects are
    skipped, counted in `corrupt_packets` and logged, and a truncated file yields
    what it has (`readable()` says how much was read). With `strict=True` the first
    unreadable or corrupt packet or frame ends the iteration with an InputError.
    `high_depth=True` yields uint16 RGB (16-bit scale) for sources of more than 8
    bits. A file with no decodable frame raises InputError. Use as a context manager
    (closing stops the thread) or just iterate to the end.
    """

    def __init__(self, path: Path | str, max_frames: int | None = None, queue_size: int = 8, *,
                 strict: bool = False, high_depth: bool = False):
        self.path = Path(path)
        self.max_frames = max_frames
        self.strict = strict
        self.corrupt_packets = 0  # packets rejected by the demuxer/decoder, and frames flagged corrupt
        self.first_bad: float | None = None  # seconds: where the first one was met
        self.frames_read = 0
        self.end_time = 0.0  # end (start + duration) of the last frame read, seconds
        self._container = open_input(self.path)
        try:
            self._stream = video_stream(self._container, self.path)
        except InputError:
            self._container.close()
            raise
        fmt = self._stream.codec_context.format
        deep = fmt is not None and max(c.bits for c in fmt.components) > 8
        self._rgb_format = "rgb48le" if high_depth and deep else "rgb24"
        self._sws = SWS_FLAGS_DEEP if deep else SWS_FLAGS
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
                if packet.is_corrupt and packet.size and not self._corrupt("packet flagged corrupt", packet.pts):
                    return
                try:
                    frames = vs.decode(packet)
                except av.error.FFmpegError as e:
                    if not self._corrupt(e, packet.pts):
                        return
                    continue
                if not self._emit(frames):
                    return
        except av.error.FFmpegError as e:  # the demuxer gave up (truncated/corrupt container)
            if not self._corrupt(e, None):
                return
            try:
                self._emit(vs.decode(None))  # flush the frames the decoder still holds
            except av.error.FFmpegError as e2:
                self._corrupt(e2, None)
        except Exception as e:  # noqa: BLE001 - handed to the consumer thread, re-raised there
            self._put(e)
        finally:
            self._put(_END)

    def _seconds(self, pts: int | None) -> float:
        if pts is None or self._start is None:
            return self.end_time if self._last_time is None else self._last_time + self._step
        return float((pts - self._start) * self._stream.time_base)

    def _emit(self, frames: list[av.VideoFrame]) -> bool:
        """Queue decoded frames as RGB; False once the reader is closed, failed or max_frames reached."""
        for f in frames:
            if f.pts is None:
                t = 0.0 if self._last_time is None else self._last_time + self._step
            else:
                if self._start is None:
                    self._start = f.pts
                t = self._seconds(f.pts)
            if f.is_corrupt and not self._corrupt("frame decoded with errors", f.pts):
                return False
            self._last_time = t
            length = float(f.duration * self._stream.time_base) if f.duration else self._step
            rgb = f.to_ndarray(format=self._rgb_format, interpolation=self._sws,
                               src_color_range=f.color_range or None)
            if not self._put(Frame(rgb, t)):
                return False
            self.end_time = max(self.end_time, t + length)
            self._queued += 1
            if self.max_frames is not None and self._queued >= self.max_frames:
                return False
        return True

    def _corrupt(self, e: object, pts: int | None) -> bool:
        """Count one bad packet/frame; False (stop decoding, error queued) in strict mode."""
        self.corrupt_packets += 1
        if self.first_bad is None:
            self.first_bad = self._seconds(pts)
        if self.strict:
            self._put(InputError(f"{self.path} is damaged: unreadable or corrupt data at {self.first_bad:.2f} s "
                                 f"(after {self._queued} good frames); {ALLOW_HINT}"))
            return False
        if self.corrupt_packets <= 3:  # counted in the summary; callers warn once
            log.info("%s: skipping a corrupt packet (%s)", self.path, e)
        return True

    def readable(self) -> Readable:
        """How much has been read so far (frames, seconds, bad packets) for vfi_cli.media.integrity."""
        return Readable(duration=self.end_time, frames=self.frames_read, bad=self.corrupt_packets,
                        first_bad=self.first_bad)

    def damage(self, info: VideoInfo) -> str | None:
        """After reading to the end: one line saying how the file is damaged, or None."""
        readable = dataclasses.replace(self.readable(), other_streams_end=info.other_streams_end)
        return damage_message(self.path, info.declared, readable, float(info.frame_rate))

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
        if isinstance(item, InputError):
            raise item
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
