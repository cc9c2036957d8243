"""Read one integer field of a GGUF file's metadata without loading the model (the format:
https://github.com/ggml-org/ggml/blob/master/docs/gguf.md)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["read_uint_field"]

# value type -> struct format of a scalar (8: string, 9: array)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_uint_field(path: Path, key: str) -> int | None:
    """The integer value of ``key`` in the file's metadata; ``None`` when it is absent, not an
    integer, or the file is not a readable GGUF file."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                return None
            _version, _tensors, n_fields = struct.unpack("<IQQ", fh.read(20))
            for _ in range(n_fields):
                name = _string(fh)
                (kind,) = struct.unpack("<I", fh.read(4))
                if name == key:
                    if kind in _SCALARS and kind not in (6, 7, 12):
                        return int(struct.unpack(_SCALARS[kind], fh.read(struct.calcsize(_SCALARS[kind])))[0])
                    return None
                _skip(fh, kind)
    except (OSError, struct.error, UnicodeDecodeError, ValueError):
        return None
    return None


def _string(fh: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", fh.read(8))
    return fh.read(n).decode("utf-8")


def _skip(fh: BinaryIO, kind: int) -> None:
    if kind in _SCALARS:
        fh.seek(struct.calcsize(_SCALARS[kind]), 1)
    elif kind == _STRING:
        (n,) = struct.unpack("<Q", fh.read(8))
        fh.seek(n, 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", fh.read(12))
        if item in _SCALARS:
            fh.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _skip(fh, item)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")
