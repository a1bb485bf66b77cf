"""Shared pytest fixtures.

tests/ has no __init__.py, so pytest (default "prepend" import mode) puts this
folder on sys.path and test modules can `from clips import make_clip`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from clips import make_clip


@pytest.fixture
def tmp_clip(tmp_path: Path) -> Callable[..., Path]:
    """Factory: tmp_clip("name.mkv", **make_clip_kwargs) -> path of a fresh clip in tmp_path."""

    def factory(name: str = "clip.mkv", **kwargs) -> Path:
        return make_clip(tmp_path / name, **kwargs)

    return factory


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A complete model directory with random weights (non-zero denoiser output)."""
    from vfi_cli.models import checkpoint
    from vfi_cli.models.config import preset
    from vfi_cli.models.denoiser import UNet
    from vfi_cli.models.autoencoder import VQGAN

    tiny = preset("tiny")
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    vq, unet = VQGAN(tiny.vqgan), UNet(tiny.unet, tiny.vqgan.factor)
    for p in list(unet.conv_out.parameters()) + list(vq.decoder.levels[0].head.parameters()) + list(vq.decoder.head.parameters()):
        torch.nn.init.normal_(p, std=0.05)
    checkpoint.save_autoencoder(root / "ae", tiny.vqgan, vq.state_dict(), {"step": 0})
    checkpoint.save_interpolator(root / "m", tiny, unet.state_dict(), root / "ae", {"step": 0})
    return root / "m"
