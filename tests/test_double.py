"""`vfi double` end to end with a tiny random-weight model: frames, rates, audio, errors, leftovers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from clips import clip_facts, make_clip, read_all_frames
from vfi_cli.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_double_lossless_frames_rate_duration_and_alignment(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=9, width=32, height=32, fps=Fraction(30000, 1001))
    out = tmp_path / "out.mp4"  # mp4: exact rational timestamps (matroska stores ms)
    res = run("double", src, out, "--weights", tiny_weights, "--lossless", "-q", "--batch-size", "3")
    assert res.exit_code == 0, res.output
    a, b = clip_facts(src), clip_facts(out)
    assert b.num_frames == 2 * a.num_frames
    assert b.average_rate == Fraction(60000, 1001)
    frames_in, frames_out = read_all_frames(src), read_all_frames(out)
    for i, f in enumerate(frames_in):  # originals sit, bit-exact, at the even slots
        assert np.array_equal(frames_out[2 * i], f)
    assert np.array_equal(frames_out[-1], frames_in[-1])  # the last slot repeats the last frame
    assert abs(b.video_duration - a.video_duration) < 1.5 / 30
    assert "9 -> 18 frames" in res.output


def test_double_is_deterministic_by_seed_and_batching(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=7, width=40, height=24)
    outs = {}
    for name, extra in {"a": ["--seed", "3"], "b": ["--seed", "3", "--batch-size", "1"], "c": ["--seed", "4"]}.items():
        outs[name] = tmp_path / f"{name}.mkv"
        assert run("double", src, outs[name], "--weights", tiny_weights, "--lossless", "-q", *extra).exit_code == 0
    fa, fb, fc = (read_all_frames(outs[k]) for k in "abc")
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    assert any(not np.array_equal(x, y) for x, y in zip(fa, fc))


def test_double_odd_size_audio_and_times(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n_frames=10, width=33, height=17, audio=True)
    out = tmp_path / "out.mp4"
    res = run("double", src, out, "--weights", tiny_weights, "--times", "2", "-q")
    assert res.exit_code == 0, res.output
    a, b = clip_facts(src), clip_facts(out)
    assert (b.width, b.height) == (33, 17)
    assert b.num_frames == 4 * a.num_frames
    assert b.average_rate == 4 * a.average_rate
    assert abs(b.video_duration - a.video_duration) < 1.0 / 25
    assert b.audio_duration is not None and abs(b.audio_duration - a.audio_duration) < 0.05


def test_double_vfr_midpoints(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=8, vfr=True)
    out = tmp_path / "out.mkv"
    assert run("double", src, out, "--weights", tiny_weights, "--lossless", "-q").exit_code == 0
    t_in, t_out = clip_facts(src).times, clip_facts(out).times
    assert len(t_out) == 2 * len(t_in)
    for i in range(len(t_in) - 1):
        assert abs(t_out[2 * i] - t_in[i]) < 2e-3
        assert abs(t_out[2 * i + 1] - 0.5 * (t_in[i] + t_in[i + 1])) < 2e-3


def test_double_copies_across_cuts_and_repeats(tmp_path, tiny_weights):
    import av

    # frames: 4 of pattern A (moving), a hard cut to an unrelated pattern, with one exact repeat
    path = tmp_path / "cut.mkv"
    rng = np.random.default_rng(0)
    a = [np.roll(np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3)), 2 * i, axis=1)
         for i in range(4)]
    b = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)] * 2
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "bgr0"
        for f in a + b:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    out = tmp_path / "out.mkv"
    res = run("double", path, out, "--weights", tiny_weights, "--lossless", "-q")
    assert res.exit_code == 0, res.output
    frames = read_all_frames(out)
    assert np.array_equal(frames[7], a[3])  # the middle across the cut copies the earlier frame
    assert np.array_equal(frames[9], b[0])  # the repeated pair is copied, not synthesized
    assert "1 scene cuts and 1 repeated frames" in res.output


def _no_leftovers(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep


def test_double_bad_inputs(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=4)
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    cases = [
        (["double", tmp_path / "missing.mp4", tmp_path / "o.mp4", "--weights", tiny_weights], "no such file"),
        (["double", text, tmp_path / "o.mp4", "--weights", tiny_weights], ""),
        (["double", src, src, "--weights", tiny_weights], "is the input"),
        (["double", src, tmp_path / "nodir" / "o.mp4", "--weights", tiny_weights], "does not exist"),
        (["double", src, tmp_path / "o.mp4", "--weights", tmp_path / "nowhere"], "not found"),
        (["double", src, tmp_path / "o.xyz", "--weights", tiny_weights], ""),
        (["double", src, tmp_path / "o.mp4", "--weights", tiny_weights.parent / "ae"], "expected 'vfi'"),
    ]
    for args, needle in cases:
        res = run(*args)
        assert res.exit_code == 1, (args, res.output)
        assert "Traceback" not in res.output
        assert needle.lower() in res.output.lower(), (args, res.output)
        assert res.output.strip().startswith("error:") and res.output.strip().count("\n") == 0, res.output
    _no_leftovers(tmp_path, {"in.mkv", "notes.txt"})
    # existing output: refused without --overwrite, replaced with it
    existing = tmp_path / "exists.mkv"
    existing.write_bytes(b"keep me")
    res = run("double", src, existing, "--weights", tiny_weights, "-q")
    assert res.exit_code == 1 and "exists" in res.output and existing.read_bytes() == b"keep me"
    assert run("double", src, existing, "--weights", tiny_weights, "-q", "--overwrite").exit_code == 0
    assert clip_facts(existing).num_frames == 8


def test_double_truncated_input_leaves_no_output(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n_frames=12)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    res = run("double", cut, tmp_path / "o.mp4", "--weights", tiny_weights, "-q")
    assert res.exit_code == 1 and "Traceback" not in res.output
    _no_leftovers(tmp_path, {"in.mp4", "cut.mp4"})


def test_double_without_default_weights_says_how(tmp_path, monkeypatch):
    from vfi_cli import interpolator

    monkeypatch.setattr(interpolator, "DEFAULT_WEIGHTS", tmp_path / "none")
    src = make_clip(tmp_path / "in.mkv", n_frames=4)
    res = run("double", src, tmp_path / "o.mkv")
    assert res.exit_code == 1 and "--weights" in res.output


def test_usage_error_exit_code(tmp_path):
    assert run("double").exit_code == 2
    assert run("double", "a.mp4", "b.mp4", "--times", "9").exit_code == 2


def test_double_keeps_rotation_tag(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n_frames=5, rotation=90)
    out = tmp_path / "out.mp4"
    assert run("double", src, out, "--weights", tiny_weights, "-q").exit_code == 0
    assert clip_facts(src).rotation == clip_facts(out).rotation != 0


def test_ddpm_output_does_not_depend_on_batch_size(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=6, width=32, height=32)
    outs = []
    for bs in ("1", "4"):
        out = tmp_path / f"o{bs}.mkv"
        res = run("double", src, out, "--weights", tiny_weights, "--lossless", "-q", "--sampler", "ddpm",
                  "--steps", "3", "--batch-size", bs, "--seed", "7")
        assert res.exit_code == 0, res.output
        outs.append(read_all_frames(out))
    assert all(np.array_equal(x, y) for x, y in zip(*outs))


def test_messages_keep_brackets_and_bad_options_are_one_line(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=4)
    res = run("double", tmp_path / "clip[b].mp4", tmp_path / "o.mp4", "--weights", tiny_weights)
    assert res.exit_code == 1 and "clip[b].mp4" in res.output
    res = run("double", src, tmp_path / "o.mp4", "--weights", tiny_weights, "--precision", "fp16", "--device", "cpu")
    assert res.exit_code == 1 and "needs a CUDA device" in res.output
    res = run("double", src, tmp_path / "o.mp4", "--weights", tiny_weights, "--stats-json", tmp_path / "no" / "s.json")
    assert res.exit_code == 1 and "does not exist" in res.output
    assert not (tmp_path / "o.mp4").exists()


def test_double_reencodes_unusual_audio_for_mp4(tmp_path, tiny_weights):
    """PCM u8 mono at 11024 Hz in AVI (an 'unspecified order' layout) -> AAC in mp4."""
    import av

    src = tmp_path / "u8.avi"
    with av.open(str(src), "w") as out:
        v = out.add_stream("mjpeg", rate=15)
        v.width = v.height = 32
        v.pix_fmt = "yuvj420p"
        a = out.add_stream("pcm_u8", rate=11024, layout="mono")
        for i in range(6):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")))
        samples = (128 + 60 * np.sin(np.arange(4410) / 5)).astype(np.uint8)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="u8", layout="mono")
        frame.sample_rate, frame.pts = 11024, 0
        out.mux(a.encode(frame))
        out.mux(a.encode(None))
        out.mux(v.encode(None))
    out_path = tmp_path / "o.mp4"
    res = run("double", src, out_path, "--weights", tiny_weights, "-q")
    assert res.exit_code == 0, res.output
    facts = clip_facts(out_path)
    assert facts.num_frames == 12 and facts.audio_codec == "aac"


def test_stats_json_names_every_stage_and_tiling_runs_through_the_cli(tmp_path, tiny_weights):
    import json

    src = make_clip(tmp_path / "in.mkv", n_frames=5, width=640, height=480)
    stats = tmp_path / "s.json"
    res = run("double", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q", "--stats-json", stats,
              "--tile-pixels", str(512 * 512), "--temperature", "0.5")  # 640x480 frames -> two tiles
    assert res.exit_code == 0, res.output
    data = json.loads(stats.read_text())
    assert data["temperature"] == 0.5 and data["sampler"] == "ddim"
    stages = data["stage_seconds"]
    assert {"scene check", "upload frames", "sampler", "align + decoder", "encode video (thread)"} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    assert len(read_all_frames(tmp_path / "o.mkv")) == 10  # 2N frames: the same duration
    res = run("double", src, tmp_path / "o2.mkv", "--weights", tiny_weights, "--tile-pixels", "1000")
    assert res.exit_code == 1 and "--tile-pixels must be 0" in res.output and not (tmp_path / "o2.mkv").exists()
