"""Encode RGB frames to a video file atomically, with exact timestamps and copied audio.

Import it from vfi_cli.video. The file is written to a hidden temp file beside
the target and renamed over it only when the writer closes cleanly; on any
exception (KeyboardInterrupt included) the temp file is deleted.

Codec choice (by extension unless `codec` is given):
  .mp4 .mov .mkv -> libx264 (crf, preset, yuv420p; yuv444p when a side is odd,
                   because 4:2:0 needs even sizes and padding would change them)
  .webm          -> libvpx-vp9 (constant quality: crf with b:v 0)
  lossless=True  -> .mkv: FFV1 bgr0; .mp4/.mov: libx264rgb qp 0; .webm: VP9
                   lossless gbrp. All three store RGB, so pixels round-trip exactly.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from vfi_cli.errors import OutputError
from vfi_cli.video_audio import AudioCopier

if TYPE_CHECKING:
    from vfi_cli.video import VideoInfo

log = logging.getLogger(__name__)

SUPPORTED_CONTAINERS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".webm")
_DEFAULT_CODEC = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
# Lossless encoders by container, each with the RGB pixel format it stores exactly.
_LOSSLESS_CODEC = {".mkv": "ffv1", ".mp4": "libx264rgb", ".mov": "libx264rgb", ".webm": "libvpx-vp9"}
_LOSSLESS_FORMAT = {"ffv1": "bgr0", "libx264rgb": "rgb24", "libvpx-vp9": "gbrp"}
_LOSSLESS_OPTIONS = {"ffv1": {}, "libx264rgb": {"qp": "0"}, "libvpx-vp9": {"lossless": "1", "row-mt": "1"}}
_RGB_FORMATS = {"bgr0", "rgb24", "gbrp", "bgr24"}
# x264 preset -> libvpx cpu-used (speed/quality trade-off of the same spirit).
_VP9_SPEED = {
    "ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4,
    "medium": 3, "slow": 2, "slower": 1, "veryslow": 0, "placebo": 0,
}  # fmt: skip
# FFmpeg AVColorSpace -> scale filter matrix for RGB -> YUV (unspecified: bt601, swscale's default).
_MATRIX = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# Where decoders assume 4:2:0 chroma sits when the stream does not say (H.264/HEVC: left).
_CHROMA_LOC = {"libx264": "left", "libx265": "left", "h264": "left", "hevc": "left", "mpeg4": "left"}
VFR_TIME_BASE = Fraction(1, 90000)


class _RgbToYuv:
    """RGB24 ndarray -> VideoFrame in the encoder's YUV format, via an FFmpeg scale filter.

    A filter (not frame.reformat) because FFmpeg 8's swscale honours chroma siting:
    H.264 decoders report 4:2:0 chroma as left-sited, so we must produce it there or
    every decoded frame shifts colour (about +1.3 red on a gradient). Accurate
    rounding and full chroma interpolation avoid swscale's ~1-level darkening.
    """

    def __init__(self, width: int, height: int, pix_fmt: str, matrix: str, chroma_loc: str):
        self._graph = av.filter.Graph()
        src = self._graph.add_buffer(width=width, height=height, format="rgb24", time_base=VFR_TIME_BASE)
        scale = self._graph.add(
            "scale",
            f"flags=bilinear+accurate_rnd+full_chroma_int:out_color_matrix={matrix}"
            f":out_range=tv:out_chroma_loc={chroma_loc}",
        )
        fmt = self._graph.add("format", pix_fmt)
        sink = self._graph.add("buffersink")
        src.link_to(scale)
        scale.link_to(fmt)
        fmt.link_to(sink)
        self._graph.configure()
        self._n = 0

    def __call__(self, rgb: np.ndarray) -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = self._n, VFR_TIME_BASE  # any increasing pts will do
        self._n += 1
        self._graph.push(frame)
        return self._graph.pull()


def default_codec(path: Path | str) -> str:
    """Encoder chosen for an output path by its extension; OutputError if unsupported."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _DEFAULT_CODEC:
        choices = ", ".join(SUPPORTED_CONTAINERS)
        raise OutputError(f"{path}: unsupported output container '{ext or '(none)'}'; use one of {choices}")
    return _require_encoder(path, _DEFAULT_CODEC[ext])


def _require_encoder(path: Path, codec: str) -> str:
    """`codec` if this PyAV build can encode video with it, else OutputError."""
    hint = "use libx264 (.mp4/.mkv/.mov) or libvpx-vp9 (.webm)"
    if codec not in av.codecs_available:
        raise OutputError(f"{path}: encoder '{codec}' is not available in this PyAV build; {hint}")
    try:
        is_video = av.Codec(codec, "w").type == "video"
    except (av.error.FFmpegError, ValueError):
        is_video = False
    if not is_video:
        raise OutputError(f"{path}: '{codec}' is not a video encoder; {hint}")
    return codec


def _encoder_settings(
    path: Path, width: int, height: int, codec: str | None, crf: int, preset: str, lossless: bool
) -> tuple[str, str, dict[str, str]]:
    """(encoder, pix_fmt, encoder options) for this output."""
    if lossless:
        if codec is None:
            default_codec(path)  # validates the extension
            codec = _LOSSLESS_CODEC[path.suffix.lower()]
        elif codec not in _LOSSLESS_FORMAT:
            raise OutputError(f"{path}: lossless output uses ffv1, libx264rgb or libvpx-vp9, not '{codec}'")
        _require_encoder(path, codec)
        options = dict(_LOSSLESS_OPTIONS[codec])
        if codec == "libx264rgb":
            options["preset"] = preset
        return codec, _LOSSLESS_FORMAT[codec], options
    codec = _require_encoder(path, codec) if codec else default_codec(path)
    formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    odd = width % 2 or height % 2
    # 4:2:0 needs even sizes in x264 & co (VP9 copes); odd sizes get 4:4:4 rather than padding.
    if "yuv420p" in formats and not (odd and codec != "libvpx-vp9" and "yuv444p" in formats):
        pix_fmt = "yuv420p"
    elif "yuv444p" in formats:
        pix_fmt = "yuv444p"
    else:
        pix_fmt = formats[0] if formats else "yuv420p"
    if codec.startswith("libx26"):
        options = {"crf": str(crf), "preset": preset}
    elif codec == "libvpx-vp9":
        options = {"crf": str(crf), "b": "0", "row-mt": "1", "cpu-used": str(_VP9_SPEED.get(preset, 3))}
    else:
        options = {}
    return codec, pix_fmt, options


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
        codec, self._pix_fmt, options = _encoder_settings(self.path, width, height, codec, crf, preset, lossless)
        self.frames_written = 0
        self._like = like
        self._timed: bool | None = None  # write(rgb, time) rather than write(rgb)
        self._last_pts: int | None = None
        self._held: tuple[av.VideoFrame, float | None] | None = None  # VFR frame awaiting its duration
        self._last_step = 0
        self._durations: dict[int, int] = {}
        self._video_end = 0.0
        self._closed = False
        self._tmp = self.path.with_name(f".{self.path.stem}.vfi-{os.getpid()}.tmp{self.path.suffix}")
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
        if self._pix_fmt not in _RGB_FORMATS:
            # Always limited ("tv") range: swscale's full-range RGB->YUV biases chroma by
            # half a level (a colour cast), and limited range is what players expect.
            cc.color_range = 1
            if color.get("colorspace") in _MATRIX:
                cc.colorspace = color["colorspace"]
            matrix = _MATRIX.get(color.get("colorspace", 2), "bt601")
            chroma_loc = _CHROMA_LOC.get(codec, "unknown")
            self._to_yuv = _RgbToYuv(self.width, self.height, self._pix_fmt, matrix, chroma_loc)
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
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {rgb.shape} {rgb.dtype}")
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
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if self._pix_fmt != "rgb24":
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
