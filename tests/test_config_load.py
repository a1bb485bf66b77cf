"""Model directories with a malformed config.json or mismatched tensors: one error line, no traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from clips import make_clip
from vfi_cli.models.config import ConfigError, LDMConfig, from_dict, preset, to_dict
from vfi_cli.cli import app

runner = CliRunner()


def _edit(src, dst, change):
    shutil.copytree(src, dst)
    data = json.loads((dst / "config.json").read_text())
    change(data)
    (dst / "config.json").write_text(json.dumps(data))
    return dst


@pytest.mark.parametrize("change,needle", [
    (lambda d: d["model"].update(default_steps="abc"), '"default_steps": "abc" must be an integer'),
    (lambda d: d["model"].update(default_sampler="euler"), '"default_sampler": "euler" must be ddim | dpm | ddpm'),
    (lambda d: d["model"]["vqgan"].update(ch_mult=[1, "2"]), '"ch_mult[1]": "2" must be an integer'),
    (lambda d: d["model"]["unet"].update(dropout="none"), '"dropout": "none" must be a number'),
    (lambda d: d["model"]["scheduler"].update(beta_schedule="cosine2"), '"beta_schedule": "cosine2" must be'),
    (lambda d: d["model"].update(vqgan=3), "must be an object"),
    (lambda d: d["model"]["unet"].update(ch=24), "does not match the model in its config.json: "),
])
def test_bad_model_config_is_one_line(tmp_path, tiny_weights, change, needle):
    weights = _edit(tiny_weights, tmp_path / "w", change)
    src = make_clip(tmp_path / "in.mkv", n_frames=3)
    res = runner.invoke(app, ["double", str(src), str(tmp_path / "o.mkv"), "--weights", str(weights)])
    text = res.output.strip()
    assert res.exit_code == 1 and text.startswith("error:") and "\n" not in text and "Traceback" not in text, text
    assert needle in text and "config.json" in text, text
    assert len(text) < 300, text
    assert not (tmp_path / "o.mkv").exists()


def test_shape_mismatch_is_summarised(tmp_path, tiny_weights):
    weights = _edit(tiny_weights, tmp_path / "w", lambda d: d["model"]["unet"].update(ch=24))
    src = make_clip(tmp_path / "in.mkv", n_frames=3)
    res = runner.invoke(app, ["double", str(src), str(tmp_path / "o.mkv"), "--weights", str(weights)])
    assert "tensor(s) of another shape (e.g. " in res.output and "in the file" in res.output, res.output


def test_every_preset_round_trips_and_types_are_checked():
    for name in ("tiny", "small", "base"):
        assert from_dict(LDMConfig, json.loads(json.dumps(to_dict(preset(name))))) == preset(name)
    with pytest.raises(ConfigError, match='"latent_scale": true must be a number'):
        from_dict(LDMConfig, {"latent_scale": True})
    with pytest.raises(ConfigError, match='"num_heads": -1 must not be negative'):
        from_dict(LDMConfig, {"unet": {"num_heads": -1}})
