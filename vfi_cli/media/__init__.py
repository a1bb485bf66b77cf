"""Media in and out: the only package that imports PyAV (FFmpeg).

probe (what a file holds: geometry, exact rate, timing, colour, damage), reader (decoded RGB
frames, uint8 or 16-bit), writer (atomic encode at an exact rate, colour tags and audio kept),
audio (stream copy / re-encode), encoders (codec and pixel-format choice), integrity (is a file
truncated or corrupt), tempfiles and paths (output safety). This module itself imports nothing,
so code that only lists files (training data, `vfi eval`) does not load av.
"""

# File name endings taken as videos where a folder is searched (training data, `vfi eval`).
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .mkv .mov .avi .webm .m4v .mpg .mpeg .ogv .ogg .ts .mts .m2ts .flv .wmv .y4m .gif".split()
)
