"""Our hidden temp files beside an output (.NAME.vfi-PID.tmpEXT): naming, stale cleanup, a writability probe."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from vfi_cli.errors import OutputError

log = logging.getLogger(__name__)


def temp_path(path: Path, pid: int | None = None) -> Path:
    """The hidden temp file a writer in process `pid` uses for `path`: .NAME.vfi-PID.tmpEXT."""
    return path.with_name(f".{path.stem}.vfi-{os.getpid() if pid is None else pid}.tmp{path.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def cleanup_stale_temps(path: Path | str) -> list[Path]:
    """Delete temp files of `path` left by writers whose process is gone (e.g. SIGKILLed); returns them."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.vfi-(\d+)\.tmp{re.escape(path.suffix)}")
    removed = []
    try:
        names = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return removed
    for p in names:
        pid = int(pattern.fullmatch(p.name)[1])
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                p.unlink()
                removed.append(p)
                log.info("removed %s, left by an interrupted run (process %d)", p, pid)
            except OSError as e:
                log.debug("cannot remove %s: %s", p, e)
    return removed


def probe_writable(path: Path | str) -> None:
    """Create and delete our temp file for `path` now, so an unwritable place fails before any work."""
    tmp = temp_path(Path(path))
    try:
        with open(tmp, "xb"):
            pass
        tmp.unlink()
    except FileExistsError:
        pass  # ours from this very process: writable
    except OSError as e:
        raise OutputError(f"{path}: cannot write in {Path(path).parent} ({e.strerror or e})") from None
