"""`vfi retime`: the exact output-time plan, and end to end with a tiny random-weight model."""

from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clips import VFR_STEPS_MS, clip_facts, make_clip, pattern_frame, read_all_frames
from vfi_cli import retime as rt
from vfi_cli.cli import app
from vfi_cli.media.probe import probe

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# ----------------------------------------------------------------------------- the plan


def test_slots_24_to_60_copy_every_other_frame_and_place_the_rest_exactly():
    rate_in, rate = F(24000, 1001), F(60000, 1001)
    times = [i / rate_in for i in range(5)]
    slots = [s for i in range(4) for s in rt.slots_between(times[i], times[i + 1], rate, i)]
    assert [s.k for s in slots] == list(range(10))  # 4 input gaps -> 2.5 output frames each
    assert [(s.pair, s.t) for s in slots] == [
        (0, 0), (0, F(2, 5)), (0, F(4, 5)), (1, F(1, 5)), (1, F(3, 5)),
        (2, 0), (2, F(2, 5)), (2, F(4, 5)), (3, F(1, 5)), (3, F(3, 5))]
    for s in slots:  # every slot lies where its t says
        assert s.k / rate == times[s.pair] + s.t * (times[s.pair + 1] - times[s.pair])
    assert [s.j for s in slots if s.pair == 0] == [0, 0, 1]  # new frames of a pair: j = 0, 1, ...


def test_target_rate_and_parse_rate(tmp_path):
    info = probe(make_clip(tmp_path / "c.mkv", n_frames=3))  # 25 fps
    assert rt.target_rate(info, fps=F(60000, 1001)) == F(60000, 1001)
    assert rt.target_rate(info, factor=F(5, 2)) == F(125, 2)  # 25 fps x 2.5
    assert rt.parse_rate("60000/1001", "--fps") == F(60000, 1001)
    assert rt.parse_rate("59.94", "--fps") == F(2997, 50)
    for bad in ("abc", "0", "-3", "1/0", ""):
        with pytest.raises(rt.RateError):
            rt.parse_rate(bad, "--fps")
    for kw in ({"fps": F(25)}, {"fps": F(20)}, {"factor": F(1)}, {"factor": F(1, 2)}, {}):
        with pytest.raises(rt.RateError):
            rt.target_rate(info, **kw)


# ----------------------------------------------------------------------------- end to end


def test_retime_23976_to_5994_with_audio_exact_times_and_duration(tmp_path, tiny_weights):
    rate_in, rate = F(24000, 1001), F(60000, 1001)
    src = make_clip(tmp_path / "in.mp4", n_frames=7, fps=rate_in, audio=True)
    out = tmp_path / "out.mp4"  # mp4: exact rational timestamps
    res = run("retime", src, out, "--fps", "60000/1001", "--weights", tiny_weights, "-q", "--steps", "2")
    assert res.exit_code == 0, res.output
    a, b = clip_facts(src), clip_facts(out)
    duration = F(7) / rate_in
    assert abs(b.num_frames - round(duration * rate)) <= 1
    assert b.average_rate == rate
    for k, t in enumerate(b.times):  # output frame k at k / RATE, exactly (on the stream's time base)
        assert F(b.pts[k] - b.pts[0]) * b.time_base == k / rate, k
    assert abs(b.video_duration - a.video_duration) < 1 / 60
    assert b.audio_codec == a.audio_codec and abs(b.audio_duration - a.audio_duration) < 0.05
    assert abs(b.audio_start - b.video_start) < 0.03
    assert f"7 -> {b.num_frames} frames" in res.output


def test_retime_factor_3_lossless_copies_originals(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=5, fps=30)
    out = tmp_path / "out.mkv"
    res = run("retime", src, out, "--factor", "3", "--weights", tiny_weights, "--lossless", "-q", "--steps", "2",
              "--batch-size", "2")
    assert res.exit_code == 0, res.output
    facts = clip_facts(out)
    assert facts.num_frames == 15 and facts.average_rate == 90
    frames_in, frames_out = read_all_frames(src), read_all_frames(out)
    for i, f in enumerate(frames_in):
        assert np.array_equal(frames_out[3 * i], f)  # originals, bit-exact, at every third slot
    assert np.array_equal(frames_out[-1], frames_in[-1])  # past the last frame: repeats it
    assert not np.array_equal(frames_out[1], frames_in[0])  # between: synthesized
    assert "8 synthesized" in res.output  # 4 gaps x 2 new frames


def test_retime_factor_2_is_vfi_double(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=6, fps=25)
    common = ["--weights", tiny_weights, "--lossless", "-q", "--steps", "2", "--seed", "5"]
    assert run("double", src, tmp_path / "d.mkv", *common).exit_code == 0
    res = run("retime", src, tmp_path / "r.mkv", "--factor", "2", *common, "--batch-size", "3")
    assert res.exit_code == 0, res.output
    d, r = read_all_frames(tmp_path / "d.mkv"), read_all_frames(tmp_path / "r.mkv")
    assert len(d) == len(r) == 12
    assert all(np.array_equal(x, y) for x, y in zip(d, r))


def test_retime_vfr_input_uses_real_timestamps(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=8, vfr=True)  # steps of 20..100 ms
    out = tmp_path / "out.mp4"
    res = run("retime", src, out, "--fps", "50", "--weights", tiny_weights, "--lossless", "-q", "--steps", "2")
    assert res.exit_code == 0, res.output
    duration = F(sum(VFR_STEPS_MS[:8]), 1000)
    facts = clip_facts(out)
    assert facts.num_frames == duration * 50 and facts.average_rate == 50
    assert all(F(p - facts.pts[0]) * facts.time_base == F(k, 50) for k, p in enumerate(facts.pts))
    frames_out = read_all_frames(out)
    t = 0
    for i in range(8):  # every input time is on the 20 ms grid: each original is copied at its time
        assert np.array_equal(frames_out[t // 20], pattern_frame(i, 32, 32)), i
        t += VFR_STEPS_MS[i]


def test_retime_copies_the_nearer_original_across_a_cut(tmp_path, tiny_weights):
    import av

    path = tmp_path / "cut.mkv"
    a = [pattern_frame(i, 64, 64) for i in range(3)]
    b = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "bgr0"
        for f in a + [b, b]:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    out = tmp_path / "out.mkv"
    res = run("retime", path, out, "--factor", "3", "--weights", tiny_weights, "--lossless", "-q", "--steps", "2")
    assert res.exit_code == 0, res.output
    frames = read_all_frames(out)
    assert len(frames) == 15
    assert np.array_equal(frames[7], a[2]) and np.array_equal(frames[8], b)  # the cut: t = 1/3, 2/3
    assert np.array_equal(frames[10], b) and np.array_equal(frames[11], b)  # the repeat
    assert "1 scene cuts and 1 repeated frames" in res.output and "4 synthesized" in res.output


def test_retime_refuses_bad_rates_with_one_line(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n_frames=4, fps=25)
    out = tmp_path / "o.mp4"
    cases = [(["--fps", "24"], 1, "not above"), (["--fps", "25"], 1, "not above"),
             (["--factor", "0.5"], 1, "above 1"), (["--fps", "fast"], 2, "fraction"),
             ([], 2, "exactly one"), (["--fps", "50", "--factor", "2"], 2, "exactly one")]
    for extra, code, needle in cases:
        res = run("retime", src, out, "--weights", tiny_weights, *extra)
        text = res.output.strip()
        assert res.exit_code == code, (extra, res.output)
        assert text.startswith("error:") and "\n" not in text and needle in text, (extra, text)
    res = run("retime", tmp_path / "missing.mkv", out, "--fps", "50", "--weights", tiny_weights)
    assert res.exit_code == 1 and "no such file" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]  # nothing half-written
