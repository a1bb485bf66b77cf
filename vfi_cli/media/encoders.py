"""Which encoder, pixel format and options an output gets: output path, the source's pixel format and
`lossless` in; codec name, pixel format, encoder options and the list of reductions out (the rules are
in vfi_cli.media.writer's module docstring)."""

from __future__ import annotations

from pathlib import Path

import av

from vfi_cli.errors import OutputError

SUPPORTED_CONTAINERS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".webm")
_DEFAULT_CODEC = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
# Lossless encoders by container, each with the RGB pixel format it stores exactly.
_LOSSLESS_CODEC = {".mkv": "ffv1", ".mp4": "libx264rgb", ".mov": "libx264rgb", ".webm": "libvpx-vp9"}
_LOSSLESS_FORMAT = {"ffv1": "bgr0", "libx264rgb": "rgb24", "libvpx-vp9": "gbrp"}
_LOSSLESS_OPTIONS = {"ffv1": {}, "libx264rgb": {"qp": "0"}, "libvpx-vp9": {"lossless": "1", "row-mt": "1"}}
RGB_FORMATS = {"bgr0", "rgb24", "gbrp", "bgr24", "rgb48le"}
# x264 preset -> libvpx cpu-used (speed/quality trade-off of the same spirit).
_VP9_SPEED = {
    "ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4,
    "medium": 3, "slow": 2, "slower": 1, "veryslow": 0, "placebo": 0,
}  # fmt: skip
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


def default_codec(path: Path | str) -> str:
    """Encoder chosen for an output path by its extension; OutputError if unsupported."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _DEFAULT_CODEC:
        choices = ", ".join(SUPPORTED_CONTAINERS)
        raise OutputError(f"{path}: unsupported output container '{ext or '(none)'}'; use one of {choices}")
    return _require_encoder(path, _DEFAULT_CODEC[ext])


def _require_encoder(path: Path, codec: str) -> str:
    """`codec` if this PyAV build can encode video with it, else OutputError."""
    hint = "use libx264 (.mp4/.mkv/.mov) or libvpx-vp9 (.webm)"
    if codec not in av.codecs_available:
        raise OutputError(f"{path}: encoder '{codec}' is not available in this PyAV build; {hint}")
    try:
        is_video = av.Codec(codec, "w").type == "video"
    except (av.error.FFmpegError, ValueError):
        is_video = False
    if not is_video:
        raise OutputError(f"{path}: '{codec}' is not a video encoder; {hint}")
    return codec


def _yuv_format(codec: str, width: int, height: int, bits: int, chroma: str) -> tuple[str, list[str]]:
    """The encoder's pixel format closest to a source of `bits`/`chroma`, and notes on what is reduced."""
    formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    want = chroma if chroma in ("420", "422", "444") else "420"
    if (width % 2 or height % 2) and codec != "libvpx-vp9":
        want = "444"  # 4:2:0 and 4:2:2 need even sizes in x264 & co (VP9 copes)
    depths = [d for d in (12, 10, 8) if d <= max(8, bits)]
    for sub in dict.fromkeys([want, "444", "420"]):  # same chroma first, then more, then the usual
        for depth in depths:
            name = f"yuv{sub}p" + ("" if depth == 8 else f"{depth}le")
            if name in formats:
                notes = []
                if depth < bits:
                    notes.append(f"{bits}-bit source written with {depth} bits ({codec} in this build has no "
                                 f"{bits}-bit {name[:8]} format)")
                if sub != want and sub == "420":
                    notes.append(f"4:{want[1]}:{want[2]} chroma written as 4:2:0 ({codec} cannot store it)")
                return name, notes
    return (formats[0] if formats else "yuv420p"), [f"{codec} stores {formats[0] if formats else 'yuv420p'}"]


def encoder_settings(
    path: Path, width: int, height: int, codec: str | None, crf: int, preset: str, lossless: bool,
    bits: int = 8, chroma: str = "420",
) -> tuple[str, str, dict[str, str], list[str]]:
    """(encoder, pix_fmt, encoder options, notes on reduced precision) for this output."""
    if preset not in X264_PRESETS:
        raise OutputError(f"{path}: unknown preset {preset!r}; choose one of {', '.join(X264_PRESETS)}")
    if lossless:
        if codec is None:
            default_codec(path)  # validates the extension
            codec = _LOSSLESS_CODEC[path.suffix.lower()]
        elif codec not in _LOSSLESS_FORMAT:
            raise OutputError(f"{path}: lossless output uses ffv1, libx264rgb or libvpx-vp9, not '{codec}'")
        _require_encoder(path, codec)
        if bits > 8 and codec != "ffv1":
            raise OutputError(f"{path}: lossless output of a {bits}-bit source needs .mkv (FFV1 keeps 16-bit RGB); "
                              f"{codec} stores 8 bits")
        options = dict(_LOSSLESS_OPTIONS[codec])
        if codec == "libx264rgb":
            options["preset"] = preset
        return codec, "rgb48le" if bits > 8 else _LOSSLESS_FORMAT[codec], options, []
    codec = _require_encoder(path, codec) if codec else default_codec(path)
    pix_fmt, notes = _yuv_format(codec, width, height, bits, chroma)
    if codec.startswith("libx26"):
        options = {"crf": str(crf), "preset": preset}
    elif codec == "libvpx-vp9":
        options = {"crf": str(crf), "b": "0", "row-mt": "1", "cpu-used": str(_VP9_SPEED.get(preset, 3))}
    else:
        options = {}
    return codec, pix_fmt, options, notes
