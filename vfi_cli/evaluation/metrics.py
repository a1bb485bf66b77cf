"""Full-reference image metrics on uint8 RGB frames: PSNR, SSIM and colour bias.

All functions take ``pred`` and ``truth`` as uint8 arrays of shape [H, W, 3] (one
frame) or, for the ``*_batch`` variants, [B, H, W, 3]. Values are in levels
(peak 255). Computations run in float64 so that results do not depend on the
batch size or on summation order in any meaningful way.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

PEAK = 255.0
# PSNR is reported as this value for identical frames (MSE = 0) and clipped to it
# otherwise, so that a perfect frame never averages in as +inf and one wrong level
# in a huge frame (which could exceed 100 dB) never scores above a perfect one.
PSNR_IDENTICAL = 100.0

# SSIM constants (Wang et al. 2004): 11-tap Gaussian window, sigma 1.5.
SSIM_WIN = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(pred: np.ndarray, truth: np.ndarray, ndim: int) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs truth {truth.shape}")
    if pred.ndim != ndim or pred.shape[-1] != 3:
        want = "[B, H, W, 3]" if ndim == 4 else "[H, W, 3]"
        raise ValueError(f"expected {want} RGB frames, got shape {pred.shape}")


def psnr_batch(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of [B, H, W, 3] uint8 frames -> float64 [B].

    MSE is taken over all pixels and the three RGB channels; peak 255. Identical
    frames give exactly ``PSNR_IDENTICAL`` (100 dB); every value is clipped to it.
    """
    _check_pair(pred, truth, 4)
    diff = pred.astype(np.float64) - truth.astype(np.float64)  # [B, H, W, 3]
    mse = np.mean(diff * diff, axis=(1, 2, 3))  # [B]
    out = np.full(mse.shape, PSNR_IDENTICAL)
    nz = mse > 0
    out[nz] = np.minimum(10.0 * np.log10(PEAK * PEAK / mse[nz]), PSNR_IDENTICAL)
    return out


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of one [H, W, 3] uint8 frame; 100.0 for identical frames (see module)."""
    _check_pair(pred, truth, 3)
    return float(psnr_batch(pred[None], truth[None])[0])


def gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalized 1-D Gaussian taps [size], centred (the separable SSIM window)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim_batch(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of [B, H, W, 3] uint8 frames -> float64 [B].

    Wang et al.: Gaussian window 11 / sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
    population (not sample) covariances, 'valid' filtering (no padding; equal to
    skimage's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``, which crops
    the filtered border). The SSIM map is averaged per channel, then over RGB.
    Frames smaller than 11x11 raise ValueError.

    Speed: one float32 11x11 convolution over the 5 moment maps of the 3 channels
    (~3x faster on CPU than float64). Pixels are centred on 127.5 first, so second
    moments stay below 2^14 and the variance cancellation error is ~1e-3 levels^2,
    far below C2 = 58.5: SSIM agrees with float64 to ~1e-6 on real frames (~1e-5 in the
    worst case, flat images); identical frames give exactly 1.
    """
    _check_pair(pred, truth, 4)
    b, h, w, _ = pred.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WIN}x{SSIM_WIN}, got {w}x{h}")
    g = torch.from_numpy(gaussian_window()).float()
    kernel = (g[:, None] * g[None, :]).view(1, 1, SSIM_WIN, SSIM_WIN)  # [1, 1, 11, 11]
    c1 = (SSIM_K1 * PEAK) ** 2
    c2 = (SSIM_K2 * PEAK) ** 2
    out = np.empty(b)
    for i in range(b):  # one frame at a time bounds memory for large frames
        x = torch.from_numpy(pred[i]).permute(2, 0, 1).float() - 127.5  # [3, H, W]
        y = torch.from_numpy(truth[i]).permute(2, 0, 1).float() - 127.5
        maps = torch.cat([x, y, x * x, y * y, x * y])[:, None]  # [15, 1, H, W]
        mx, my, xx, yy, xy = F.conv2d(maps, kernel).double().view(5, 3, h - 10, w - 10)
        vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
        mx, my = mx + 127.5, my + 127.5  # means back in levels (variances are shift-invariant)
        smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out[i] = float(smap.mean(dim=(1, 2)).mean())  # per channel, then RGB mean
    return out


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """SSIM of one [H, W, 3] uint8 frame (definition in ``ssim_batch``); 1.0 if identical."""
    _check_pair(pred, truth, 3)
    return float(ssim_batch(pred[None], truth[None])[0])


def colour_bias_batch(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame mean signed error pred - truth per RGB channel, in levels -> [B, 3]."""
    _check_pair(pred, truth, 4)
    return (pred.astype(np.float64) - truth.astype(np.float64)).mean(axis=(1, 2))


def colour_bias(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean of pred - truth per RGB channel, in levels -> float64 [3] (a colour cast)."""
    _check_pair(pred, truth, 3)
    return colour_bias_batch(pred[None], truth[None])[0]
