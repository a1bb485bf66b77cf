"""The fast paths of issue 14 give the same numbers as their plain references, and the allocator
settings stop a repeated large allocation from faulting its pages in every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from vfi_cli import allocator
from vfi_cli.models.layers import AttnBlock, _bands, cat_channels
from vfi_cli.models.motion import _box_inside, _pyramid, box_mean


@pytest.mark.parametrize("k", [3, 5, 9])
@pytest.mark.parametrize("channels_last", [False, True])
def test_box_is_average_pooling(k: int, channels_last: bool) -> None:
    x = torch.randn(2, 3, 23, 31)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    padded = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=True)
    inside = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
    valid = F.avg_pool2d(x, k, stride=1)
    torch.testing.assert_close(box_mean(x, k), padded, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(box_mean(x, k, pad=False), valid, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_box_inside(x, k), inside, atol=1e-5, rtol=1e-5)


def test_pyramid_pools_each_scale_like_the_frame_itself() -> None:
    x = torch.rand(1, 3, 96, 160)
    scales = (16, 8, 4, 2, 1)
    pyr = _pyramid(x, scales)
    assert sorted(pyr) == sorted(scales)
    for s in scales:
        torch.testing.assert_close(pyr[s], F.avg_pool2d(x, s) if s > 1 else x, atol=1e-6, rtol=1e-6)
    # a scale that is not a multiple of the finer one is pooled from the frame itself
    odd = _pyramid(x, (2, 3, 6))
    torch.testing.assert_close(odd[3], F.avg_pool2d(x, 3), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(odd[6], F.avg_pool2d(x, 6), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("layouts", [("cl", "cl"), ("cl", "cf", "cl"), ("cf", "cf"), ("cl", "one")])
def test_cat_channels_equals_torch_cat(layouts: tuple[str, ...]) -> None:
    xs = []
    for i, kind in enumerate(layouts):
        x = torch.randn(2, 1 if kind == "one" else 4 + i, 5, 7)
        xs.append(x.contiguous(memory_format=torch.channels_last) if kind == "cl" else x)
    out = cat_channels(xs)
    assert torch.equal(out, torch.cat(xs, dim=1))
    if layouts.count("cl") * 2 >= len(layouts):
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_attention_block_matches_plain_attention() -> None:
    torch.manual_seed(0)
    block = AttnBlock(32, num_heads=4).eval()
    torch.nn.init.normal_(block.proj.weight)  # the block may start as the identity
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        got = block(x)
        b, c, h, w = x.shape
        q, k, v = block.qkv(block.norm(x)).reshape(b, 3, 4, c // 4, h * w).unbind(1)  # [B, heads, d, HW]
        att = torch.softmax(q.transpose(-1, -2) @ k / (c // 4) ** 0.5, dim=-1)  # [B, heads, HW, HW]
        ref = x + block.proj((v @ att.transpose(-1, -2)).reshape(b, c, h, w))
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def _plain_attention(block: AttnBlock, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention over all positions of x [B, C, h, w], written out: the block's output."""
    b, c, h, w = x.shape
    q, k, v = block.qkv(block.norm(x)).reshape(b, 3, block.num_heads, c // block.num_heads, h * w).unbind(1)
    att = torch.softmax(q.transpose(-1, -2) @ k / (c // block.num_heads) ** 0.5, dim=-1)  # [B, heads, HW, HW]
    return x + block.proj((v @ att.transpose(-1, -2)).reshape(b, c, h, w))


@pytest.mark.parametrize("n,window", [(1, 8), (8, 8), (9, 8), (45, 8), (80, 16), (17, 5)])
def test_bands_tile_the_axis_in_near_equal_windows(n: int, window: int) -> None:
    bands = _bands(n, window)
    assert bands[0][0] == 0 and bands[-1][1] == n
    assert all(a1 == b0 for (_, a1), (b0, _) in zip(bands, bands[1:]))
    sizes = [e - s for s, e in bands]
    assert max(sizes) <= window and max(sizes) - min(sizes) <= 1
    assert len(bands) == -(-n // window)


def test_windowed_attention_attends_within_each_window() -> None:
    torch.manual_seed(0)
    block = AttnBlock(16, num_heads=2, window=4).eval()
    torch.nn.init.normal_(block.proj.weight)
    x = torch.randn(2, 16, 9, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = block(x)
        # the norm is over the whole map; the attention within each of the 3 x 2 windows
        normed = block.norm(x)
        ref = torch.empty_like(x)
        for y0, y1 in [(0, 3), (3, 6), (6, 9)]:
            for x0, x1 in [(0, 3), (3, 7)]:
                part = AttnBlock(16, num_heads=2).eval()
                part.load_state_dict(block.state_dict())
                part.norm = torch.nn.Identity()
                ref[..., y0:y1, x0:x1] = _plain_attention(part, normed[..., y0:y1, x0:x1]) - normed[..., y0:y1, x0:x1]
        ref = x + ref
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    # a map no larger than the window is attended globally, as without a window
    small = x[..., :4, :4]
    with torch.no_grad():
        torch.testing.assert_close(block(small), _plain_attention(block, small), atol=1e-4, rtol=1e-4)


_CHURN = """
import json, resource, sys
from vfi_cli import allocator
on = allocator.tune() if sys.argv[1] == "tuned" else False
import torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def batch():  # the tensors of one batch, each above glibc's largest mmap threshold (32 MB)
    a = torch.ones(2, 64, 256, 256)  # 33.5 MB
    c = a * 2
    d = torch.cat([a, c], 1)
    return float(d[0, 0, 0, 0])
for _ in range(8):  # warm-up: the heap grows to what the batches need
    batch()
f0 = faults()
for _ in range(8):
    batch()
print(json.dumps({"applied": on, "faults": faults() - f0}))
"""


def _churn(mode: str) -> dict:
    env = {**os.environ, "VFI_MALLOC": ""}
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_allocator_keeps_freed_memory_for_the_next_batch() -> None:
    plain, tuned = _churn("plain"), _churn("tuned")
    if not tuned["applied"]:
        pytest.skip("not glibc")
    # 8 batches of 3 tensors of 34-67 MB: glibc's defaults map and unmap each one (~65k page
    # faults); tuned, the heap keeps what the earlier batches freed and the next ones reuse most of it
    assert plain["faults"] > 40_000
    assert tuned["faults"] < plain["faults"] / 5


def test_allocator_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFI_MALLOC", "system")
    assert allocator._apply() is False
