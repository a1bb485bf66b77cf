"""`vfi eval --factor K`: keep every K-th frame, score the K-1 frames between at t = j/K (and per t)."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clips import make_clip
from test_evaluate import write_ffv1
from vfi_cli.evaluation import protocol as ev
from vfi_cli.evaluation import runner
from vfi_cli.evaluation import metrics
from vfi_cli.cli import app

RAMP = 6  # levels per frame: a linear brightness ramp, so blend at the right t is exact


def ramp_frames(n: int, h: int = 32, w: int = 40) -> list[np.ndarray]:
    """Textured frames brightening by RAMP levels per frame (no cut, no duplicate)."""
    base = np.random.default_rng(3).integers(20, 120, (h, w, 3)).astype(np.int64)
    return [(base + RAMP * i).astype(np.uint8) for i in range(n)]


@pytest.fixture
def ramp_clip(tmp_path: Path) -> Path:
    return write_ffv1(tmp_path / "ramp.mkv", ramp_frames(10))  # groups f0..f3, f3..f6, f6..f9


def test_blend_weights_by_t_and_half_is_todays_blend():
    a, b = np.zeros((2, 1, 1, 3), np.uint8), np.full((2, 1, 1, 3), 90, np.uint8)
    assert ev.blend(a, b, t=np.array([1 / 3, 2 / 3]))[:, 0, 0, 0].tolist() == [30, 60]
    x = np.array([[[[0, 1, 254]]]], np.uint8)
    y = np.array([[[[1, 2, 255]]]], np.uint8)
    assert ev.blend(x, y, t=np.array([0.5])).tolist() == ev.blend(x, y).tolist()


def test_factor_3_triplets_and_analytic_scores_per_t(ramp_clip):
    counts = ev.Scores()
    trip = list(ev.video_triplets(ramp_clip, counts, factor=3))
    assert [(t.index, t.t) for t in trip] == [(1, Fraction(1, 3)), (2, Fraction(2, 3)), (4, Fraction(1, 3)),
                                             (5, Fraction(2, 3)), (7, Fraction(1, 3)), (8, Fraction(2, 3))]
    blend = runner.evaluate([ramp_clip], ev.blend, factor=3, batch_size=4)
    assert blend.pooled.evaluated == 6 and blend.pooled.psnr == 100.0  # exact at t = j/3
    rep = runner.evaluate([ramp_clip], ev.repeat, factor=3)
    by_t = rep.by_t()
    assert list(by_t) == [Fraction(1, 3), Fraction(2, 3)]
    for t, (pooled, clips) in by_t.items():  # repeat is off by j * RAMP levels at t = j/3
        assert pooled.evaluated == 3 and clips[0].scores.evaluated == 3
        assert pooled.psnr == pytest.approx(20 * math.log10(255 / (3 * t * RAMP)), abs=1e-9)


def test_factor_skips_whole_groups_with_a_duplicate(tmp_path):
    frames = ramp_frames(7)
    frames[5] = frames[4]  # a repeat inside the second group (f3..f6)
    counts = ev.Scores()
    trip = list(ev.video_triplets(write_ffv1(tmp_path / "d.mkv", frames), counts, factor=3))
    assert [t.index for t in trip] == [1, 2] and counts.skipped_duplicates == 1


def test_factor_2_model_scores_are_todays(tmp_path, tiny_weights):
    """K = 2 passes no times and keys the noise by the running triplet index, as before."""
    from vfi_cli.interpolator import Interpolator

    clip = make_clip(tmp_path / "c.mkv", n_frames=7, width=32, height=32)
    interp = Interpolator.load(tiny_weights, device="cpu", steps=2)
    res = runner.evaluate([clip], interp.sequential_pairs(), factor=2, batch_size=2)
    trip = list(ev.video_triplets(clip, ev.Scores()))
    x0, x1, x2 = (np.stack([getattr(t, k) for t in trip]) for k in ("x0", "truth", "x2"))
    want = metrics.psnr_batch(interp.interpolate_pairs(x0, x2, first_key=0), x1).tolist()
    assert res.clips[0].frame_psnr == want
    k3 = runner.evaluate([clip], interp.sequential_pairs(), factor=3, batch_size=3)
    assert k3.pooled.evaluated == 4 and set(k3.by_t()) == {Fraction(1, 3), Fraction(2, 3)}


def test_cli_eval_factor_3_reports_per_t(ramp_clip, tmp_path):
    out = tmp_path / "e.json"
    res = CliRunner().invoke(app, ["eval", str(ramp_clip), "--method", "blend", "--factor", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "t = 1/3" in res.output and "t = 2/3" in res.output
    doc = json.loads(out.read_text())
    assert doc["provenance"]["factor"] == 3 and doc["pooled"]["evaluated"] == 6
    assert set(doc["by_t"]) == {"1/3", "2/3"} and doc["by_t"]["1/3"]["pooled"]["psnr"] == 100.0
    assert doc["clips"][0]["frames"]["t"] == ["1/3", "2/3"] * 3
    res = CliRunner().invoke(app, ["eval", str(ramp_clip), "--method", "blend", "--factor", "1"])
    assert res.exit_code == 2
