"""vfi_cli.frames: tensor conversion, pad/crop, scene cuts and duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vfi_cli import frames as fr


def texture(seed: int, size: int, tint=(0.5, 0.5, 0.5)) -> np.ndarray:
    """A natural-looking multi-octave colour texture, HxWx3 uint8."""
    g = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.rand(1, 3, k, k, generator=g), size=(size, size), mode="bicubic",
                          align_corners=False) / k**0.5 for k in (8, 16, 32, 64))
    x = torch.tensor(tint).view(1, 3, 1, 1) + 0.25 * (x - x.mean()) / x.std()
    return (x.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()


def test_tensor_round_trip_exact():
    img = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3) % 256
    img = np.concatenate([img, 255 - img], axis=1).astype(np.uint8)  # every value 0..255
    x = fr.to_tensor(img)
    assert x.shape == (1, 3, 16, 32) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(fr.from_tensor(x)[0], img)
    batch = np.stack([img, img[::-1]])
    assert np.array_equal(fr.from_tensor(fr.to_tensor(batch)), batch)


def test_from_tensor_rounds_and_clamps():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0, 1 / 127.5 * 0.4 - 1]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    assert fr.from_tensor(x)[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255, 0]
    with pytest.raises(TypeError):
        fr.to_tensor(np.zeros((4, 4, 3), dtype=np.float32))


def test_pad_crop_round_trip_odd_size():
    x = torch.randn(2, 3, 33, 17)
    y, hw = fr.pad_to_multiple(x, 16)
    assert y.shape == (2, 3, 48, 32) and hw == (33, 17)
    assert torch.equal(y[..., 40, :17], x[..., 32, :])  # replicate bottom row
    assert torch.equal(y[..., :33, 30], x[..., :, 16])  # replicate right column
    assert torch.equal(fr.crop_to(y, hw), x)
    z, hw2 = fr.pad_to_multiple(y, 16)
    assert z is y and hw2 == (48, 32)


def test_scene_cut_between_unrelated_images():
    a = texture(0, 128)
    b = texture(1, 128, tint=(0.7, 0.4, 0.3))
    assert fr.is_scene_cut(a, b)
    # noise-like content with the same colour distribution: caught by block matching
    rng = np.random.default_rng(0)
    n1, n2 = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    assert fr.histogram_distance(n1, n2) < fr.CUT_HIST_THRESHOLD
    assert fr.is_scene_cut(n1, n2)


@pytest.mark.parametrize("shift", [4, 12, 24])
def test_no_scene_cut_for_large_translation(shift):
    big = texture(0, 256)
    a = big[40:168, 40:168]
    b = big[40 + shift // 2 : 168 + shift // 2, 40 + shift : 168 + shift]
    assert fr.frame_difference(a, b) > fr.CUT_THRESHOLD  # the cheap gate alone would call it a cut
    assert not fr.is_scene_cut(a, b)


def test_no_scene_cut_when_identical_or_small_change():
    a = texture(3, 96)
    assert fr.frame_difference(a, a) == 0.0
    assert not fr.is_scene_cut(a, a)
    darker = (a.astype(np.int16) - 10).clip(0, 255).astype(np.uint8)
    assert not fr.is_scene_cut(a, darker)


def test_duplicates():
    a = texture(4, 64)
    assert fr.is_duplicate(a, a.copy())
    noisy = (a.astype(np.int16) + np.random.default_rng(0).integers(-1, 2, a.shape)).clip(0, 255).astype(np.uint8)
    assert fr.is_duplicate(a, noisy)
    moved = a.copy()
    moved[10:18, 20:28] = 255  # a small bright square appears
    assert not fr.is_duplicate(a, moved)
    assert not fr.is_duplicate(a, texture(5, 64))
    assert not fr.is_duplicate(a, a[:32])


def test_batch_versions_match_pairwise():
    big = texture(0, 192)
    seq = np.stack([big[i * 6 : i * 6 + 96, i * 8 : i * 8 + 96] for i in range(4)]
                   + [texture(9, 96, tint=(0.7, 0.4, 0.3))] * 2)  # 4 moving, a cut, a duplicate
    cuts = fr.scene_cuts(seq)
    assert cuts.tolist() == [fr.is_scene_cut(a, b) for a, b in zip(seq[:-1], seq[1:])]
    assert cuts.tolist() == [False, False, False, True, False]
    dup = fr.duplicate_pairs(fr.thumbnails(seq))
    assert dup.tolist() == [False, False, False, False, True]
    assert fr.scene_cuts(seq[:1]).shape == (0,)


def test_thumbnail_factor():
    assert fr.thumb_factor(32, 32) == 1
    assert fr.thumb_factor(256, 448) == 4
    assert fr.thumbnails(np.zeros((2, 1080, 1920, 3), np.uint8)).shape == (2, 67, 120, 3)
