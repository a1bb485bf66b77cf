"""Tests of vfi_cli.video: probe, FrameReader, VideoWriter, check_paths, bad inputs."""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import clip_duration, clip_facts, make_clip, pattern_frame, read_all_frames

from vfi_cli.errors import InputError, OutputError
from vfi_cli.media.encoders import SUPPORTED_CONTAINERS, default_codec
from vfi_cli.media.reader import FrameReader
from vfi_cli.media.writer import VideoWriter
from vfi_cli.media.paths import check_paths
from vfi_cli.media.probe import probe

NTSC = Fraction(30000, 1001)


def frames_of(n: int, w: int = 32, h: int = 32, pattern: str = "moving") -> list[np.ndarray]:
    return [pattern_frame(i, w, h, pattern) for i in range(n)]


def write_all(path: Path, frames: list[np.ndarray], rate: Fraction, times: list[float] | None = None, **kw) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, rate, **kw) as wr:
        for i, f in enumerate(frames):
            wr.write(f, None if times is None else times[i])
    return path


def doubled(frames: list[np.ndarray]) -> list[np.ndarray]:
    """2N frames: each original then a stand-in middle frame (the last slot repeats the last frame)."""
    out = []
    for i, f in enumerate(frames):
        nxt = frames[min(i + 1, len(frames) - 1)]
        out += [f, ((f.astype(np.uint16) + nxt) // 2).astype(np.uint8)]
    return out


# ---------------------------------------------------------------- probe


def test_probe_fields_mkv_with_audio(tmp_clip):
    info = probe(tmp_clip("a.mkv", n_frames=10, width=48, height=32, audio=True))
    assert (info.width, info.height) == (48, 32)
    assert info.frame_rate == 25 and isinstance(info.frame_rate, Fraction)
    assert info.num_frames == 10
    assert info.duration == pytest.approx(0.4, abs=1e-6)
    assert info.codec == "ffv1"
    assert info.has_audio and info.rotation == 0 and not info.vfr
    assert set(info.color) == {"color_primaries", "color_trc", "colorspace", "color_range"}


def test_probe_ntsc_mp4_rate_exact(tmp_clip):
    info = probe(tmp_clip("n.mp4", fps=NTSC))
    assert info.frame_rate == NTSC
    assert info.num_frames == 12 and info.codec == "h264" and not info.has_audio
    assert info.duration == pytest.approx(12 / float(NTSC), abs=1e-6)


def test_probe_vfr_rate_from_timestamps(tmp_clip):
    info = probe(tmp_clip("v.mkv", vfr=True))  # matroska metadata says 25, timestamps say 20
    assert info.vfr
    assert info.duration == pytest.approx(clip_duration(12, vfr=True), abs=1e-6)
    assert info.frame_rate == Fraction(12) / Fraction(clip_duration(12, vfr=True)).limit_denominator(1000)


def test_probe_rotation(tmp_clip):
    assert probe(tmp_clip("r.mp4", rotation=90)).rotation == 90


# ---------------------------------------------------------------- reader


def test_reader_exact_pixels_and_times(tmp_clip):
    path = tmp_clip("a.mkv", n_frames=12)
    with FrameReader(path) as reader:
        frames = list(reader)
    assert reader.frames_read == 12 and reader.corrupt_packets == 0
    for i, f in enumerate(frames):
        assert f.rgb.dtype == np.uint8 and f.rgb.shape == (32, 32, 3)
        np.testing.assert_array_equal(f.rgb, pattern_frame(i, 32, 32))
        assert f.time == pytest.approx(i / 25, abs=1e-9)


def test_reader_max_frames_and_early_close(tmp_clip):
    path = tmp_clip("a.mkv", n_frames=40)
    with FrameReader(path, max_frames=5) as reader:
        assert len(list(reader)) == 5
    with FrameReader(path, queue_size=2) as reader:  # stop while the thread is blocked on a full queue
        next(reader)
    assert reader.frames_read == 1


def test_reader_vfr_times(tmp_clip):
    with FrameReader(tmp_clip("v.mkv", vfr=True)) as reader:
        times = [f.time for f in reader]
    assert times == pytest.approx(clip_facts(reader.path).times, abs=1e-9)
    assert times[2:4] == pytest.approx([0.08, 0.16])


# ---------------------------------------------------------------- writer


@pytest.mark.parametrize("name", ["l.mkv", "l.mp4", "l.webm"])
def test_writer_lossless_bit_exact(tmp_path, name):
    frames = frames_of(6, 32, 32, "noise")
    out = write_all(tmp_path / name, frames, Fraction(25), lossless=True)
    got = read_all_frames(out)
    assert len(got) == 6
    for a, b in zip(got, frames):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("timed", [False, True])
def test_writer_doubles_ntsc_rate_exactly(tmp_clip, tmp_path, timed):
    src = tmp_clip("n.mp4", fps=NTSC)
    info = probe(src)
    rate = info.frame_rate * 2
    times = [i / float(rate) for i in range(24)] if timed else None  # timed + CFR `like`: snapped to 1/rate
    out = write_all(tmp_path / "o.mp4", doubled(read_all_frames(src)), rate, times=times, like=info)
    got = probe(out)
    assert got.frame_rate == Fraction(60000, 1001)
    assert got.num_frames == 24
    assert got.duration == pytest.approx(info.duration, abs=1e-6)
    facts = clip_facts(out)
    assert [Fraction(t).limit_denominator(10**6) for t in facts.times] == [Fraction(1001 * i, 60000) for i in range(24)]


@pytest.mark.parametrize("name,lossless", [("odd.mp4", False), ("odd.mkv", True), ("odd.mkv", False)])
def test_writer_odd_size_round_trip(tmp_path, name, lossless):
    frames = frames_of(4, 33, 17)
    got = read_all_frames(write_all(tmp_path / name, frames, Fraction(25), lossless=lossless))
    assert len(got) == 4 and got[0].shape == (17, 33, 3)
    diff = np.stack(got).astype(float) - np.stack(frames)
    if lossless:
        assert not diff.any()
    else:  # yuv444p at crf 17 on a 33x17 gradient: small error, no bias
        assert np.abs(diff).mean() < 5 and np.abs(diff.mean(axis=(0, 1, 2))).max() < 1


@pytest.mark.parametrize(
    "ext,acodec,start", [(".mp4", "aac", 0.0), (".mkv", "flac", 0.0), (".mp4", "aac", 1.0), (".mkv", "flac", 1.0)]
)
def test_writer_remuxes_audio(tmp_clip, tmp_path, ext, acodec, start):
    src = tmp_clip("s" + ext, n_frames=25, audio=True, start=start)  # start: timestamps not at 0
    info = probe(src)
    with FrameReader(src) as reader:
        frames = [f.rgb for f in reader]
    out = write_all(tmp_path / ("o" + ext), doubled(frames), info.frame_rate * 2, audio_from=src, like=info)
    before, after = clip_facts(src), clip_facts(out)
    assert after.audio_codec == acodec == before.audio_codec  # copied, not re-encoded
    assert after.num_frames == 50
    assert after.video_start == 0
    assert after.video_duration == pytest.approx(before.video_duration, abs=1e-6)
    assert after.audio_duration == pytest.approx(before.audio_duration, abs=1 / 25)
    # audio keeps its offset to the video (sync)
    assert after.audio_start - after.video_start == pytest.approx(before.audio_start - before.video_start, abs=1e-3)


def test_writer_reencodes_audio_the_container_cannot_hold(tmp_clip, tmp_path):
    src = tmp_clip("s.mp4", n_frames=25, audio=True)
    out = write_all(tmp_path / "o.webm", read_all_frames(src), Fraction(25), audio_from=src)
    facts = clip_facts(out)
    assert facts.codec == "vp9" and facts.audio_codec == "opus"
    assert facts.audio_duration == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_writer_vfr_timestamps_as_given(tmp_path, ext):
    times = [0.0, 0.04, 0.06, 0.16, 0.17, 0.3]
    out = write_all(tmp_path / ("v" + ext), frames_of(6), Fraction(20), times=times)
    facts = clip_facts(out)
    assert facts.times == pytest.approx(times, abs=1e-3 if ext == ".mkv" else 1e-6)
    assert facts.video_duration == pytest.approx(0.3 + 0.13, abs=1e-3)  # last frame lasts the previous step


@pytest.mark.parametrize("color_range", [1, 2])
def test_writer_copies_rotation_and_colour_tags(tmp_clip, tmp_path, color_range):
    info = probe(tmp_clip("r.mp4", rotation=90))
    bt709 = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": color_range}
    like = dataclasses.replace(info, color=bt709)
    frames = frames_of(3, 64, 64)
    out = write_all(tmp_path / "o.mp4", frames, Fraction(25), like=like)
    got = probe(out)
    assert got.rotation == 90
    assert got.color == bt709  # range kept (limited or full)
    bias = np.mean([a.astype(float) - b for a, b in zip(read_all_frames(out), frames)], axis=(0, 1, 2))
    # no colour cast from RGB<->YUV conversion (swscale's full-range path is ~0.8 level off)
    assert np.abs(bias).max() < (0.3 if color_range == 1 else 1.0)


@pytest.mark.parametrize("name", ["c.mp4", "c.webm", "c.mkv"])
def test_writer_lossy_round_trip_has_no_colour_cast(tmp_path, name):
    frames = frames_of(4, 64, 64)
    got = read_all_frames(write_all(tmp_path / name, frames, Fraction(25)))
    diff = np.stack(got).astype(float) - np.stack(frames)
    assert np.abs(diff.mean(axis=(0, 1, 2))).max() < 0.3  # mean per channel: the 4:2:0 chroma siting is right
    assert np.abs(diff).mean() < 1.5


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_writer_deletes_temp_file_on_exception(tmp_path, exc):
    target = tmp_path / "o.mkv"
    with pytest.raises(exc):
        with VideoWriter(target, 32, 32, Fraction(25), lossless=True) as w:
            w.write(frames_of(1)[0])
            w.write(frames_of(2)[1])
            (tmp,) = tmp_path.iterdir()  # ffv1 muxes at once: the temp file exists meanwhile
            assert tmp.name.startswith(".") and tmp.suffix == ".mkv"
            raise exc()
    assert list(tmp_path.iterdir()) == []


def test_writer_overwrite_and_no_frames(tmp_path):
    target = tmp_path / "o.mkv"
    target.write_text("old")
    with pytest.raises(OutputError, match="exists"):
        VideoWriter(target, 32, 32, Fraction(25))
    write_all(target, frames_of(2), Fraction(25), overwrite=True)
    assert len(read_all_frames(target)) == 2
    with pytest.raises(OutputError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mkv", 32, 32, Fraction(25)):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mkv"]


def test_codec_choice_errors(tmp_path):
    assert set(SUPPORTED_CONTAINERS) >= {".mp4", ".mkv", ".mov", ".webm"}
    assert default_codec("x.mp4") == "libx264" and default_codec("x.webm") == "libvpx-vp9"
    with pytest.raises(OutputError, match="unsupported output container"):
        default_codec(tmp_path / "x.avi")
    with pytest.raises(OutputError, match="not available"):
        VideoWriter(tmp_path / "x.mkv", 32, 32, Fraction(25), codec="libtheora")
    with pytest.raises(OutputError, match="cannot hold"):
        VideoWriter(tmp_path / "x.webm", 32, 32, Fraction(25), codec="libx264")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- paths


def test_check_paths(tmp_clip, tmp_path):
    src = tmp_clip("in.mkv", n_frames=2)
    check_paths(src, tmp_path / "out.mp4", overwrite=False)
    with pytest.raises(InputError, match="no such file"):
        check_paths(tmp_path / "missing.mp4", tmp_path / "out.mp4", False)
    with pytest.raises(OutputError, match="is the input"):
        check_paths(src, src, True)
    link = tmp_path / "link.mkv"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="is the input"):
        check_paths(src, link, True)
    (tmp_path / "out.mp4").write_bytes(b"x")
    with pytest.raises(OutputError, match="exists"):
        check_paths(src, tmp_path / "out.mp4", False)
    check_paths(src, tmp_path / "out.mp4", True)
    with pytest.raises(OutputError, match="does not exist"):
        check_paths(src, tmp_path / "nodir" / "out.mp4", False)
    with pytest.raises(OutputError, match="unsupported output container"):
        check_paths(src, tmp_path / "out.xyz", False)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_check_paths_unwritable_dir(tmp_clip, tmp_path):
    src = tmp_clip("in.mkv", n_frames=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_paths(src, locked / "out.mp4", False)
    finally:
        locked.chmod(0o700)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("content,message", [(b"hello, not a video\n" * 50, "not a readable video"), (b"", "empty file")])
def test_bad_input_files(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        probe(path)
    with pytest.raises(InputError, match=message):
        FrameReader(path)


def test_input_without_video_stream(tmp_path):
    import av

    path = tmp_path / "audio.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with pytest.raises(InputError, match="no video stream"):
        probe(path)


def test_truncated_mp4_without_index_is_input_error(tmp_clip):
    path = tmp_clip("t.mp4", n_frames=30, pattern="noise")  # moov atom at the end: cut away
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="t.mp4: not a readable video"):
        probe(path)
    with pytest.raises(InputError, match="t.mp4: not a readable video"):
        FrameReader(path)


@pytest.mark.parametrize("name", ["t.mp4", "t.mkv"])
def test_truncated_file_reads_what_exists(tmp_path, name):
    path = write_all(tmp_path / name, frames_of(30, pattern="noise"), Fraction(25))  # our mp4s are faststart
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    info = probe(path)
    assert info.frame_rate == 25 and 0 < info.num_frames < 30
    with FrameReader(path) as reader:
        frames = list(reader)
    assert 0 < len(frames) < 30 and reader.frames_read == len(frames)


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    path = write_all(tmp_path / "g.mkv", frames_of(30, pattern="noise"), Fraction(25), lossless=True)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in range(len(data) // 3, 2 * len(data) // 3, 97):  # garble the middle third
        data[i] = rng.integers(0, 256)
    path.write_bytes(bytes(data))
    with FrameReader(path) as reader:
        frames = list(reader)
    assert reader.corrupt_packets > 0
    assert 0 < len(frames) < 30


def test_vfr_doubling_keeps_duration_and_midpoints(tmp_clip, tmp_path):
    src = tmp_clip("v.mp4", vfr=True, audio=True)
    info = probe(src)
    with FrameReader(src) as reader:
        frames = list(reader)
    ends = [f.time for f in frames[1:]] + [info.duration]
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 32, 32, info.frame_rate * 2, audio_from=src, like=info) as w:
        for f, end in zip(frames, ends):
            w.write(f.rgb, f.time)
            w.write(f.rgb, (f.time + end) / 2)  # the new frame sits at the midpoint
    facts = clip_facts(out)
    expected = [t for f, end in zip(frames, ends) for t in (f.time, (f.time + end) / 2)]
    assert facts.times == pytest.approx(expected, abs=1e-4)
    assert facts.video_duration == pytest.approx(info.duration, abs=1e-4)
    assert facts.audio_codec == "aac"


def test_writer_rejects_mixed_modes_and_bad_frames(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "o.mkv", 32, 32, Fraction(25)) as w:
            w.write(frames_of(1)[0])
            w.write(frames_of(1)[0], 0.5)
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "o.mkv", 32, 32, Fraction(25)) as w:
            w.write(np.zeros((16, 32, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
