"""Damaged input: truncated or corrupt files are an error unless --allow-damaged (which still warns)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clips import clip_facts, cut_file, make_clip
from vfi_cli.cli import app
from vfi_cli.media.integrity import Declared, Readable, damage_message, truncated
from vfi_cli.media.reader import FrameReader
from vfi_cli.media.probe import probe

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_error_line(res, needle: str) -> None:
    assert res.exit_code == 1, res.output
    text = res.output.strip()
    assert text.startswith("error:") and "\n" not in text and "Traceback" not in text, text
    assert needle in text, text
    assert "--allow-damaged" in text


@pytest.mark.parametrize("name,kw", [("c.mkv", {}), ("c.mp4", {"faststart": True}), ("c.ts", {})])
def test_half_cut_input_is_an_error_and_allow_damaged_processes_the_rest(tmp_path, tiny_weights, name, kw):
    whole = make_clip(tmp_path / name, n_frames=40, fps=Fraction(30), pattern="noise", codec="libx264", **kw)
    cut = cut_file(whole)
    out = tmp_path / "o.mkv"
    res = run("double", cut, out, "--weights", tiny_weights, "-q")
    _one_error_line(res, str(cut))
    assert "truncated" in res.output or "damaged" in res.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted([name, cut.name])
    res = run("double", cut, out, "--weights", tiny_weights, "-q", "--allow-damaged")
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and ("truncated" in res.output or "damaged" in res.output)
    frames = clip_facts(out).num_frames
    assert 0 < frames < 80 and frames % 2 == 0


def test_truncated_mkv_message_says_how_much_was_readable(tmp_path, tiny_weights):
    whole = make_clip(tmp_path / "in.mkv", n_frames=40, fps=Fraction(30), pattern="noise", codec="libx264")
    res = run("double", cut_file(whole), tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    _one_error_line(res, "looks truncated: read ")
    assert "of 1.33 s declared" in res.output and "of about 40 frames" in res.output


def test_corrupt_packets_in_the_middle(tmp_path, tiny_weights):
    path = make_clip(tmp_path / "g.mkv", n_frames=30, pattern="noise")  # FFV1: checksummed slices
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in range(len(data) // 3, 2 * len(data) // 3, 97):  # garble the middle third
        data[i] = rng.integers(0, 256)
    path.write_bytes(bytes(data))
    out = tmp_path / "o.mkv"
    res = run("double", path, out, "--weights", tiny_weights, "-q")
    _one_error_line(res, "is damaged")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["g.mkv"]
    res = run("double", path, out, "--weights", tiny_weights, "-q", "--allow-damaged")
    assert res.exit_code == 0 and "warning:" in res.output and out.exists(), res.output


def test_healthy_files_are_not_flagged(tmp_path):
    for name, kw in [("a.mkv", {"audio": True}), ("b.mp4", {"audio": True}), ("c.ts", {}),
                     ("d.mkv", {"vfr": True}), ("e.webm", {})]:
        path = make_clip(tmp_path / name, n_frames=20, **kw)
        info = probe(path)
        with FrameReader(path, strict=True) as reader:
            assert len(list(reader)) == 20
            assert info.damage is None and reader.damage(info) is None, name


def test_tolerance_rule():
    whole = Declared(duration=10.0, frames=250)
    assert not truncated(whole, Readable(duration=9.84, frames=246), 25.0)  # 4 frames short: tolerated
    assert truncated(whole, Readable(duration=9.7, frames=243), 25.0)
    # container-only duration: the audio reaching the end means the video is just shorter
    box = Declared(duration=10.0, container_only=True)
    assert not truncated(box, Readable(duration=8.0, frames=200, other_streams_end=10.0), 25.0)
    assert truncated(box, Readable(duration=8.0, frames=200, other_streams_end=8.0), 25.0)
    msg = damage_message(Path("x.mkv"), Declared(duration=1.333), Readable(duration=0.44, frames=13), 30.0)
    assert msg == "x.mkv looks truncated: read 0.44 s of 1.33 s declared (13 of about 40 frames)"
