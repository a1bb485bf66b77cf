"""Full fidelity through `vfi double`: >8-bit precision, chroma, range, colour tags (HLG/PQ), VFR end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clips import clip_duration, clip_facts, deep_pattern, make_clip, read_all_frames
from vfi_cli.cli import app
from vfi_cli.frames import from_tensor, thumbnails, to_tensor
from vfi_cli.media.probe import probe

runner = CliRunner()
HLG = {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1}  # BT.2020 + HLG, limited
PQ = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}  # BT.2020 + PQ (HDR10)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_tensor_helpers_by_dtype():
    deep = deep_pattern(0, 16, 8)[None]
    assert np.array_equal(from_tensor(to_tensor(deep), np.uint16), deep)  # exact at 16 bits
    assert np.array_equal(from_tensor(to_tensor(deep[..., :3] // 257 * 257), np.uint16), deep // 257 * 257)
    small = (deep // 257).astype(np.uint8)
    assert torch.allclose(to_tensor(small), to_tensor(small.astype(np.uint16) * 257))
    assert np.allclose(thumbnails(small.astype(np.uint16) * 257), thumbnails(small))  # cut thresholds in 8-bit levels
    with pytest.raises(TypeError):
        to_tensor(deep.astype(np.int64))


@pytest.mark.parametrize("pix_fmt,color", [("yuv420p10le", HLG), ("yuv444p10le", PQ)])
def test_ten_bit_hdr_source_stays_ten_bit_with_its_tags(tmp_path, tiny_weights, pix_fmt, color):
    src = make_clip(tmp_path / "in.mp4", n_frames=6, width=32, height=32, pix_fmt=pix_fmt, color=color)
    info = probe(src)
    assert (info.bit_depth, info.pix_fmt) == (10, pix_fmt)
    out = tmp_path / "out.mp4"
    res = run("double", src, out, "--weights", tiny_weights, "-q", "--crf", "0")
    assert res.exit_code == 0 and "warning" not in res.output, res.output
    got = probe(out)
    assert got.pix_fmt == pix_fmt and got.color == color
    a, b = read_all_frames(src, deep=True), read_all_frames(out, deep=True)
    assert len(b) == 2 * len(a) and b[0].dtype == np.uint16
    err = np.abs(np.stack(b[::2]).astype(float) - np.stack(a)).mean() / 257
    assert err < (0.6 if pix_fmt.startswith("yuv444") else 2.0)  # 8-bit levels; 4:2:0 resamples chroma twice


def test_writer_keeps_more_than_eight_bits(tmp_path):
    """16-bit frames into a 10-bit file lose a third of what 8-bit frames would (same file, CRF 0)."""
    from fractions import Fraction

    from vfi_cli.media.writer import VideoWriter

    like = probe(make_clip(tmp_path / "like.mp4", n_frames=2, pix_fmt="yuv444p10le"))
    frames = [deep_pattern(i, 32, 32) for i in range(3)]
    errors = []
    for deep in (True, False):
        out = tmp_path / f"{deep}.mp4"
        with VideoWriter(out, 32, 32, Fraction(25), like=like, crf=0) as w:
            for f in frames:
                w.write(f if deep else (f // 257).astype(np.uint8))
        errors.append(np.abs(np.stack(read_all_frames(out, deep=True)).astype(float) - frames).mean() / 257)
    assert errors[0] < 0.5 < 0.9 < errors[1]


def test_ten_bit_lossless_is_bit_exact_in_mkv_and_refused_in_mp4(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=5, width=32, height=32, pix_fmt="yuv420p10le", codec="ffv1")
    out = tmp_path / "out.mkv"
    res = run("double", src, out, "--weights", tiny_weights, "-q", "--lossless")
    assert res.exit_code == 0, res.output
    a, b = read_all_frames(src, deep=True), read_all_frames(out, deep=True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b[::2]))  # 16-bit RGB originals, bit-exact
    res = run("double", src, tmp_path / "out.mp4", "--weights", tiny_weights, "-q", "--lossless")
    assert res.exit_code == 1 and res.output.startswith("error:") and "needs .mkv" in res.output
    assert not (tmp_path / "out.mp4").exists()


def test_chroma_and_full_range_are_kept(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n_frames=4, width=32, height=32, pix_fmt="yuv444p")
    res = run("double", src, tmp_path / "o444.mp4", "--weights", tiny_weights, "-q")
    assert res.exit_code == 0 and probe(tmp_path / "o444.mp4").pix_fmt == "yuv444p", res.output
    full = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 2}
    src = make_clip(tmp_path / "full.mp4", n_frames=4, width=32, height=32, pix_fmt="yuv422p", color=full)
    res = run("double", src, tmp_path / "ofull.mkv", "--weights", tiny_weights, "-q")
    got = probe(tmp_path / "ofull.mkv")
    assert res.exit_code == 0 and got.chroma == "422" and got.color == full, res.output  # (h264 says yuvj422p)


def test_reduced_precision_is_said(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n_frames=4, width=32, height=32, pix_fmt="yuv420p10le")
    res = run("double", src, tmp_path / "o.webm", "--weights", tiny_weights, "-q")  # this VP9 has no 10-bit
    assert res.exit_code == 0 and "warning:" in res.output and "10-bit source written with 8 bits" in res.output


def test_vfr_last_frame_keeps_its_duration(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=8, vfr=True)  # the last frame lasts 40 ms, the one before 100
    out = tmp_path / "out.mkv"
    assert run("double", src, out, "--weights", tiny_weights, "--lossless", "-q").exit_code == 0
    a, b = clip_facts(src), clip_facts(out)
    assert b.video_duration == pytest.approx(clip_duration(8, vfr=True), abs=2e-3)
    assert b.video_duration == pytest.approx(a.video_duration, abs=2e-3)
    assert b.times[-1] - b.times[-2] == pytest.approx(0.02, abs=2e-3)  # half of the last frame's 40 ms
