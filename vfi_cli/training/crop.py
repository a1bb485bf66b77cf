"""Pick the training crop when --crop is not given: the preset's default, shrunk to fit the data.

A crop must fit inside every training frame and be a multiple of the model's stride
(the latent factor times the U-Net's downsamplings: 16 for tiny, 32 for small, 64 for base).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vfi_cli.models.config import preset as get_preset
from vfi_cli.errors import DataError

DEFAULT_CROP = {"vqgan": 128, "ldm": 256}
VIMEO_SIZE = (448, 256)


@dataclass(frozen=True)
class CropChoice:
    """The crop chosen and why (`reason` is one line for the log)."""

    crop: int
    reason: str


def model_stride(preset_name: str) -> int:
    """Frame sides the models of a preset need a multiple of."""
    try:
        cfg = get_preset(preset_name)
    except KeyError as e:
        raise DataError(str(e.args[0])) from None
    return max(cfg.vqgan.stride, cfg.vqgan.factor * 2 ** (len(cfg.unet.ch_mult) - 1))


def _smallest_frame(data: Sequence[str], max_side: int | None) -> tuple[int, int, str] | None:
    """(width, height, name) of the smallest training frame (after --max-side), None if no videos/Vimeo."""
    from vfi_cli.training.data import is_vimeo_root, list_videos
    from vfi_cli.media.probe import probe

    sizes: list[tuple[int, int, str]] = []
    for spec in data:
        path = Path(spec)
        if not path.exists() and spec.split(":", 1)[0] == "synthetic":
            continue  # rendered at the crop size
        if is_vimeo_root(path):
            sizes.append((*VIMEO_SIZE, str(path)))
            continue
        for video in list_videos(path):
            info = probe(video)
            w, h = info.width, info.height
            if max_side and max(w, h) > max_side:
                s = max_side / max(w, h)
                w, h = max(1, round(w * s)), max(1, round(h * s))
            sizes.append((w, h, video.name))
    return min(sizes, key=lambda t: min(t[0], t[1])) if sizes else None


def choose_crop(kind: str, data: Sequence[str], preset_name: str, max_side: int | None) -> CropChoice:
    """The default crop of `kind`, or the largest multiple of the model stride that fits the smallest frame."""
    default = DEFAULT_CROP[kind]
    smallest = _smallest_frame(data, max_side)
    if smallest is None or min(smallest[:2]) >= default:
        return CropChoice(default, f"crop {default} px (the default)")
    w, h, name = smallest
    stride = model_stride(preset_name)
    crop = min(w, h) // stride * stride
    if crop < stride:
        raise DataError(f"{name} is {w}x{h}: too small for training crops (at least {stride}x{stride} px)")
    return CropChoice(crop, f"crop {crop} px (the default {default} does not fit {name}, {w}x{h}; "
                            f"the largest multiple of {stride} that does)")
