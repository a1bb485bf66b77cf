"""Is an input damaged? Compare what was read with what the container declares.

Pure logic (no av): probe.py and reader.py gather the numbers, this module judges them and words
the one-line message.

A file is called damaged when any of these holds:
- *truncated*: what was read falls short of the declared video duration by more than
  `max(TRUNCATION_FRAMES frame intervals, TRUNCATION_FRACTION of the duration)`, or of
  the declared frame count by more than `max(TRUNCATION_FRAMES, TRUNCATION_FRACTION)`.
  When only the container's duration is known (it covers every stream), the file counts
  as truncated only if no stream (audio included) reaches its end, so a healthy file
  whose audio outlasts its video is not flagged;
- *corrupt*: the demuxer or decoder rejected data, or flagged a packet or frame corrupt.

Why this tolerance: healthy files differ from their headers by a few frames (H.264 in
MP4 with edit lists: pampi_tour.mp4 declares 272 frames / 11.33 s and decodes 270 /
11.25 s, 0.7 %; codec delay; rounding of millisecond timestamps). On the 12 real clips
of shared/data the largest shortfall is those 2 frames (0.08 s); 5 frames or 1 % leaves
room for that and still catches any real cut (a download cut at 90 % of a 10-minute
file misses 60 s). Durations that FFmpeg only estimates from the bit rate (raw
elementary streams such as MPEG-1 .mpeg without a container: visp_cube.mpeg "declares"
0.04 s for 3.2 s of video) are not trusted: see `UNTIMED_FORMATS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRUNCATION_FRAMES = 5
TRUNCATION_FRACTION = 0.01
# Demuxers of raw elementary streams: their "duration" is a bit-rate guess, not a declaration.
UNTIMED_FORMATS = frozenset({"mpegvideo", "h264", "hevc", "m4v", "mjpeg", "vc1", "cavsvideo", "rawvideo", "avs2"})
ALLOW_HINT = "pass --allow-damaged to process what is readable"


@dataclass(frozen=True)
class Declared:
    """What the container says about the video stream (None: it does not say)."""

    duration: float | None = None  # seconds from the video's first timestamp
    frames: int | None = None
    container_only: bool = False  # the duration is the whole file's (max over streams)


@dataclass(frozen=True)
class Readable:
    """What could actually be read (demuxed or decoded) of the video stream."""

    duration: float  # seconds: first frame start to last frame end
    frames: int
    bad: int = 0  # demux/decode errors and packets/frames flagged corrupt
    first_bad: float | None = None  # seconds, where the first bad data was met
    other_streams_end: float | None = None  # seconds: latest end of any other stream (container_only)


def _shortfall_allowed(declared: float, rate: float) -> float:
    return max(TRUNCATION_FRAMES / rate, TRUNCATION_FRACTION * declared)


def truncated(declared: Declared, readable: Readable, rate: float) -> bool:
    """True when `readable` falls short of `declared` beyond the tolerance (module docstring)."""
    if declared.frames and declared.frames - readable.frames > max(TRUNCATION_FRAMES,
                                                                    TRUNCATION_FRACTION * declared.frames):
        return True
    if not declared.duration:
        return False
    allowed = _shortfall_allowed(declared.duration, rate)
    if declared.duration - readable.duration <= allowed:
        return False
    if declared.container_only and readable.other_streams_end is not None:
        return declared.duration - readable.other_streams_end > allowed
    return True


def damage_message(path: Path, declared: Declared, readable: Readable, rate: float) -> str | None:
    """One line describing the damage (without the --allow-damaged hint), or None if the file looks whole."""
    if truncated(declared, readable, rate):
        if declared.frames:
            of = f"{readable.frames} of {declared.frames} frames"
        elif declared.duration:
            of = f"{readable.frames} of about {round(declared.duration * rate)} frames"
        else:
            of = f"{readable.frames} frames"
        total = f" of {declared.duration:.2f} s declared" if declared.duration else ""
        return f"{path} looks truncated: read {readable.duration:.2f} s{total} ({of})"
    if readable.bad:
        where = f" (first at {readable.first_bad:.2f} s)" if readable.first_bad is not None else ""
        what = "packet or frame" if readable.bad == 1 else "packets or frames"
        return (f"{path} is damaged: {readable.bad} unreadable or corrupt {what}{where}; "
                f"read {readable.frames} frames, {readable.duration:.2f} s")
    return None
