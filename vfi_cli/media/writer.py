"""Encode RGB frames to a video file atomically, with exact timestamps and copied audio.

In: the frame size and rate, the source's VideoInfo to follow (`like`: pixel format, colour,
rotation, audio), then frames (with their times for variable-rate output). Out: the file at its
path, or nothing on failure. It is written to a hidden temp file beside the target and renamed
over it only when the writer closes cleanly; on any exception (KeyboardInterrupt included) the
temp file is deleted.

Codec choice (by extension unless `codec` is given):
  .mp4 .mov .mkv -> libx264 (crf, preset), .webm -> libvpx-vp9 (constant quality:
                   crf with b:v 0). The pixel format follows the source (`like`):
                   its chroma subsampling (4:2:0, 4:2:2, 4:4:4; RGB sources get 4:4:4)
                   and bit depth (8, 10, 12) as far as the encoder allows (this
                   PyAV's libx264 does 10-bit, its libvpx-vp9 only 8-bit); 4:4:4 when a
                   side is odd (4:2:0 needs even sizes and padding would change them).
                   `notes` lists every reduction (e.g. 10 -> 8 bits) for the caller.
  lossless=True  -> .mkv: FFV1 (bgr0, or rgb48le for frames of 16-bit RGB);
                   .mp4/.mov: libx264rgb qp 0; .webm: VP9 lossless gbrp (8-bit only).
                   All store RGB, so pixels round-trip exactly.
Range (limited/full), primaries, transfer (PQ, HLG, ...) and matrix follow `like`.
Frames are HxWx3 RGB, uint8 or uint16 (16-bit scale), one dtype per file.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vfi_cli.errors import OutputError
from vfi_cli.media.audio import AudioCopier
from vfi_cli.media.encoders import RGB_FORMATS, encoder_settings
from vfi_cli.media.probe import VideoInfo
from vfi_cli.media.tempfiles import temp_path

log = logging.getLogger(__name__)

# FFmpeg AVColorSpace -> scale filter matrix for RGB -> YUV (unspecified: bt601, swscale's default).
_MATRIX = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# Where decoders assume 4:2:0 chroma sits when the stream does not say (H.264/HEVC: left).
_CHROMA_LOC = {"libx264": "left", "libx265": "left", "h264": "left", "hevc": "left", "mpeg4": "left"}
VFR_TIME_BASE = Fraction(1, 90000)
_RGB_IN = {np.dtype(np.uint8): "rgb24", np.dtype(np.uint16): "rgb48le"}


class _RgbToYuv:
    """RGB24 ndarray -> VideoFrame in the encoder's YUV format, via an FFmpeg scale filter.

    A filter (not frame.reformat) because FFmpeg 8's swscale honours chroma siting:
    H.264 decoders report 4:2:0 chroma as left-sited, so we must produce it there or
    every decoded frame shifts colour (about +1.3 red on a gradient). Accurate
    rounding and full chroma interpolation avoid swscale's ~1-level darkening.
    """

    def __init__(self, width: int, height: int, pix_fmt: str, matrix: str, chroma_loc: str,
                 in_format: str = "rgb24", full_range: bool = False):
        self._graph = av.filter.Graph()
        self._in_format = in_format
        src = self._graph.add_buffer(width=width, height=height, format=in_format, time_base=VFR_TIME_BASE)
        scale = self._graph.add(
            "scale",
            f"flags=bilinear+accurate_rnd+full_chroma_int:out_color_matrix={matrix}"
            f":out_range={'pc' if full_range else 'tv'}:out_chroma_loc={chroma_loc}",
        )
        fmt = self._graph.add("format", pix_fmt)
        sink = self._graph.add("buffersink")
        src.link_to(scale)
        scale.link_to(fmt)
        fmt.link_to(sink)
        self._graph.configure()
        self._n = 0

    def __call__(self, rgb: np.ndarray) -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(rgb, format=self._in_format)
        frame.pts, frame.time_base = self._n, VFR_TIME_BASE  # any increasing pts will do
        self._n += 1
        self._graph.push(frame)
        return self._graph.pull()



class VideoWriter:
    """Encode HxWx3 uint8 RGB frames to `path` (see the module docstring for codecs).

    `rate` is the nominal frame rate (exact Fraction). Timestamps, fixed by the
    first write:
      write(rgb)        constant rate: pts = frame index, time base 1/rate, so
                        60000/1001 stays exact.
      write(rgb, time)  given presentation times (seconds). If `like` is a
                        constant-rate input, times snap to the 1/rate grid (exact
                        rate, B-frames kept); otherwise (VFR input, or no `like`)
                        they are kept to 1/90000 s and x264 B-frames are off so
                        MP4 durations stay exact. Each frame lasts until the next;
                        the last one `duration` seconds (default: the previous step).
    `audio_from` copies that file's first audio track; `like` copies its colour
    tags and rotation.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        rate: Fraction,
        *,
        codec: str | None = None,
        crf: int = 17,
        preset: str = "medium",
        lossless: bool = False,
        audio_from: Path | None = None,
        like: VideoInfo | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        self.width, self.height = width, height
        self.rate = Fraction(rate)
        if self.rate <= 0 or width <= 0 or height <= 0:
            raise ValueError(f"bad writer geometry {width}x{height} @ {rate}")
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path}: already exists; pass --overwrite to replace it")
        if not self.path.parent.is_dir():
            raise OutputError(f"{self.path}: directory {self.path.parent} does not exist")
        bits, chroma = (like.bit_depth, like.chroma) if like is not None else (8, "420")
        codec, self._pix_fmt, options, self.notes = encoder_settings(self.path, width, height, codec, crf, preset,
                                                                      lossless, bits, chroma)
        for note in self.notes:  # the caller shows them (vfi double: one warning line each)
            log.info("%s: %s", self.path, note)
        self.frames_written = 0
        self._like = like
        self._timed: bool | None = None  # write(rgb, time) rather than write(rgb)
        self._last_pts: int | None = None
        self._held: tuple[av.VideoFrame, float | None] | None = None  # VFR frame awaiting its duration
        self._last_step = 0
        self._durations: dict[int, int] = {}
        self._video_end = 0.0
        self._closed = False
        self._tmp = temp_path(self.path)
        self._dtype: np.dtype | None = None  # of the frames, fixed by the first write
        ext = self.path.suffix.lower()
        container_options = {"movflags": "+faststart"} if ext in {".mp4", ".mov"} else {}
        try:
            self._out = av.open(str(self._tmp), "w", container_options=container_options)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: cannot create output file ({getattr(e, 'strerror', None) or e})") from e
        try:
            self._setup_streams(codec, options, like, audio_from)
        except BaseException:
            self._abort()
            raise

    def _setup_streams(
        self, codec: str, options: dict[str, str], like: VideoInfo | None, audio_from: Path | None
    ) -> None:
        """Add the video stream (codec, colour tags, rotation) and the audio track, if any."""
        if codec not in self._out.supported_codecs:
            raise OutputError(f"{self.path}: a {self.path.suffix} file cannot hold {codec} video; use .mkv")
        vs = self._out.add_stream(codec, rate=self.rate)
        vs.width, vs.height, vs.pix_fmt = self.width, self.height, self._pix_fmt
        vs.options = options
        color = (like.color if like is not None else None) or {}
        cc = vs.codec_context
        for key in ("color_primaries", "color_trc"):
            if color.get(key):
                setattr(cc, key, color[key])
        self._to_yuv: _RgbToYuv | None = None
        self._yuv_args: tuple[str, str, bool] | None = None
        if self._pix_fmt not in RGB_FORMATS:
            # The source's range: limited ("tv", what players expect) unless it was full range.
            full = color.get("color_range") == 2
            cc.color_range = 2 if full else 1
            if color.get("colorspace") in _MATRIX:
                cc.colorspace = color["colorspace"]
            matrix = _MATRIX.get(color.get("colorspace", 2), "bt601")
            self._yuv_args = (matrix, _CHROMA_LOC.get(codec, "unknown"), full)
        if like is not None and like.rotation:
            vs.set_display_rotation(like.rotation)
        self._vs = vs
        self._audio = AudioCopier(Path(audio_from), self._out, self.path.suffix.lower()) if audio_from else None

    def _start(self, timed: bool) -> None:
        """Fix the mode and time base at the first write (before the encoder opens)."""
        self._timed = timed
        fine = timed and (self._like is None or self._like.vfr)
        if fine and self._vs.codec_context.name.startswith("libx26"):
            # No B-frames: with reordering, MP4 stores dts-based durations and the
            # last frame's length (so the file's duration) comes out wrong for VFR.
            self._vs.codec_context.max_b_frames = 0
        tb = VFR_TIME_BASE if fine else 1 / self.rate
        self._tb = tb
        self._vs.codec_context.time_base = tb
        self._vs.time_base = tb

    def write(self, rgb: np.ndarray, time: float | None = None, duration: float | None = None) -> None:
        """Append one frame; `time` (seconds) is its presentation time, None for constant rate."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype not in _RGB_IN or (
                self._dtype is not None and rgb.dtype != self._dtype):
            want = "uint8 or uint16" if self._dtype is None else str(self._dtype)
            raise ValueError(f"expected a {self.height}x{self.width}x3 {want} frame, got {rgb.shape} {rgb.dtype}")
        if self._dtype is None:
            self._dtype = rgb.dtype
            if self._yuv_args is not None:
                matrix, chroma_loc, full = self._yuv_args
                self._to_yuv = _RgbToYuv(self.width, self.height, self._pix_fmt, matrix, chroma_loc,
                                         _RGB_IN[rgb.dtype], full)
        if self._timed is None:
            self._start(time is not None)
        elif self._timed != (time is not None):
            raise ValueError("mixing write(rgb) and write(rgb, time) in one VideoWriter")
        pts = round(Fraction(time) / self._tb) if self._timed else self.frames_written
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # keep timestamps strictly increasing after rounding
        rgb = np.ascontiguousarray(rgb)
        if self._to_yuv is not None:
            frame = self._to_yuv(rgb)
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format=_RGB_IN[rgb.dtype])
            if self._pix_fmt != frame.format.name:
                frame = frame.reformat(format=self._pix_fmt)  # bit-exact channel reordering
        frame.pts = pts
        frame.time_base = self._tb
        self._last_pts = pts
        self.frames_written += 1
        if not self._timed:
            self._encode(frame, 1)
            return
        if self._held is not None:
            held, _ = self._held
            self._last_step = pts - held.pts
            self._encode(held, self._last_step)
        self._held = (frame, duration)

    def _encode(self, frame: av.VideoFrame | None, duration: int = 0) -> None:
        """Encode `frame` (None flushes) lasting `duration` ticks; mux packets, then audio up to them."""
        try:
            if frame is not None:
                self._durations[frame.pts] = duration
            for p in self._vs.encode(frame):
                t = None
                if p.pts is not None:  # encoders drop frame durations: restore them by pts
                    p.duration = self._durations.pop(p.pts, p.duration or 1)
                    t = float(p.pts * self._tb)
                    self._video_end = max(self._video_end, float((p.pts + p.duration) * self._tb))
                self._out.mux(p)  # (rescales p to the stream time base)
                if self._audio is not None and t is not None:
                    self._audio.feed_until(t)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: cannot encode video ({getattr(e, 'strerror', None) or e})") from e

    def close(self) -> None:
        """Flush the encoder, finish the audio and move the file into place."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise OutputError(f"{self.path}: no frames were written")
            if self._held is not None:
                held, duration = self._held
                if duration:
                    step = round(Fraction(duration) / self._tb)
                else:
                    step = self._last_step or round(1 / (self.rate * self._tb))
                self._encode(held, max(1, step))
                self._held = None
            self._encode(None)
            if self._audio is not None:
                self._audio.finish(self._video_end)
            self._out.close()
            self._closed = True
            os.replace(self._tmp, self.path)
        except (av.error.FFmpegError, OSError) as e:
            self._abort()
            raise OutputError(f"{self.path}: cannot finish writing ({getattr(e, 'strerror', None) or e})") from e
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Close everything without committing and delete the temp file."""
        self._closed = True
        for closer in (getattr(self, "_audio", None), self._out):
            if closer is None:
                continue
            try:
                closer.close()
            except (av.error.FFmpegError, OSError) as e:
                log.debug("ignored while aborting %s: %s", self.path, e)
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._abort()
