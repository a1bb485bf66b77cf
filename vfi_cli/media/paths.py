"""Fail early, before any decoding: can IN be read and OUT be written (one error line naming the file)."""

from __future__ import annotations

import os
from pathlib import Path

from vfi_cli.errors import InputError, OutputError
from vfi_cli.media.encoders import default_codec
from vfi_cli.media.tempfiles import cleanup_stale_temps, probe_writable


def check_paths(input: Path | str, output: Path | str, overwrite: bool) -> None:
    """Fail early, before any work, if `input` cannot be read or `output` cannot be written."""
    input, output = Path(input), Path(output)
    if not input.exists():
        raise InputError(f"{input}: no such file")
    if input.is_dir():
        raise InputError(f"{input}: is a directory, not a video file")
    if output.resolve() == input.resolve() or (output.exists() and os.path.samefile(output, input)):
        raise OutputError(f"{output}: output is the input file; choose another output path")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give an output file name")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: already exists; pass --overwrite to replace it")
    parent = output.resolve().parent
    if not parent.is_dir():
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise OutputError(f"{output}: {blocker} is a file, not a directory")
        raise OutputError(f"{output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: directory {parent} is not writable")
    default_codec(output)
    cleanup_stale_temps(output)
    probe_writable(output)
