"""Carry the first audio track of a source file into an output container.

Packets are copied (remuxed) when the output container accepts the codec, and
re-encoded otherwise (AAC for .mp4/.mov, Opus for .webm, FLAC for .mkv). The
writer calls `feed_until(t)` after each video packet so audio and video stay
interleaved, and `finish(end)` to drain what is left up to the video's end.
Only vfi_cli.media.writer uses this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container

from vfi_cli.errors import InputError, OutputError

log = logging.getLogger(__name__)

# Encoder used when the output container cannot hold the source audio codec.
REENCODE_CODEC = {".mp4": "aac", ".mov": "aac", ".m4v": "aac", ".webm": "libopus", ".mkv": "flac"}
STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# sample rates an encoder accepts when it does not list them itself (FFmpeg's native AAC)
STANDARD_RATES = {"aac": (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)}


class AudioCopier:
    """Copies or re-encodes the first audio stream of `source` into `output`.

    Audio is shifted by the source's video start time, as the reader's frame
    times are (they start at 0), so sync is kept. `has_audio` is False when the
    source has no audio stream (then nothing is done). `suffix` is the output's
    extension, which picks the re-encoding codec.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, suffix: str):
        self.has_audio = False
        self.reencoded = False
        self._closed = False
        try:
            self._in = av.open(str(source))
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(f"{source}: cannot read audio ({getattr(e, 'strerror', None) or e})") from e
        if not self._in.streams.audio:
            self.close()
            return
        video = self._in.streams.video
        start = video[0].start_time if video else None
        self.offset = float(start * video[0].time_base) if start is not None else 0.0
        self.has_audio = True
        self._src = self._in.streams.audio[0]
        self._pending: av.Packet | None = None
        self._packets: Iterator[av.Packet] = self._in.demux(self._src)
        self._output = output
        name = self._src.codec_context.name
        if name in output.supported_codecs:
            self._out = output.add_stream_from_template(self._src)
            return
        self.reencoded = True
        encoder = REENCODE_CODEC.get(suffix, output.default_audio_codec)
        if encoder not in av.codecs_available:
            raise OutputError(f"{source}: its {name} audio must be re-encoded for {suffix}, but {encoder} is missing")
        codec = av.Codec(encoder, "w")
        rate = self._src.codec_context.sample_rate or 48000
        rates = codec.audio_rates or STANDARD_RATES.get(encoder)
        if rates and rate not in rates:  # e.g. an 11024 Hz source -> 11025 Hz AAC
            rate = min(rates, key=lambda r: (abs(r - rate), -r))
        self._rate = rate
        self._out = output.add_stream(encoder, rate=rate)
        src_layout = self._src.codec_context.layout
        layout = src_layout.name if src_layout else "stereo"
        if layout.endswith("channels"):  # "unspecified order" ('1 channels'): encoders refuse it
            layout = STANDARD_LAYOUTS.get(src_layout.nb_channels, "stereo")
        self._out.layout = layout
        fmt = codec.audio_formats[0].name if codec.audio_formats else "fltp"
        self._out.format = fmt
        frame_size = self._out.codec_context.frame_size or None  # AAC/Opus want fixed-size frames
        self._resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size)
        self._next_pts: int | None = None
        log.info("audio %s re-encoded as %s for %s", name, encoder, suffix)

    def _time(self, packet: av.Packet) -> float:
        return float(packet.pts * packet.time_base) - self.offset

    def feed_until(self, t: float | None) -> None:
        """Mux source audio packets that start before `t` seconds (all of them if None)."""
        if not self.has_audio:
            return
        while True:
            p = self._pending
            self._pending = None
            if p is None:
                try:
                    p = next(self._packets, None)
                except av.error.FFmpegError as e:  # truncated/corrupt source: keep what we have
                    log.warning("audio of %s ends early: %s", self._in.name, e)
                    p = None
                if p is None:
                    self._packets = iter(())
                    return
            if p.pts is None or p.size == 0:
                continue
            if t is not None and self._time(p) >= t:
                self._pending = p
                return
            self._mux(p)

    def _mux(self, p: av.Packet) -> None:
        if not self.reencoded:
            shift = round(Fraction(self.offset) / p.time_base)
            p.pts -= shift
            if p.dts is not None:
                p.dts -= shift
            p.stream = self._out
            self._output.mux(p)
            return
        try:
            frames = self._src.decode(p)
        except av.error.FFmpegError as e:
            log.warning("skipping an undecodable audio packet: %s", e)
            return
        for f in frames:
            if self._next_pts is None:
                self._next_pts = max(0, round((float(f.time or 0.0) - self.offset) * self._rate))
            self._encode(self._resampler.resample(f))

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for rf in frames:
            rf.pts = self._next_pts
            rf.time_base = Fraction(1, self._rate)
            self._next_pts += rf.samples
            self._output.mux(self._out.encode(rf))

    def finish(self, end: float | None) -> None:
        """Mux the audio that starts before `end` seconds, flush the encoder, close the source."""
        if not self.has_audio:
            return
        try:
            self.feed_until(end)
            if self.reencoded:
                if self._next_pts is not None:
                    self._encode(self._resampler.resample(None))
                self._output.mux(self._out.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        """Close the source file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._in.close()
