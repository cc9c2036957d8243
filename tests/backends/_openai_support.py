"""What the tests of the openai backend against a FaultyServer share: a clean environment, fast
retries, and a run of arithmetic problems through one configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from budgetlab.core import SamplingConfig
from budgetlab.runner import run
from budgetlab.stores import open_store
from budgetlab.tasks import arithmetic_problems

CHAT = "/v1/chat/completions"
FAST = {"backoff": 0.01, "max_backoff": 0.05}  # retries without the real waits
URL = "http://127.0.0.1:1/v1"  # nothing listens there


@pytest.fixture(autouse=True)
def clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported into a test module, it keeps the developer's own API settings out of its tests."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BUDGETLAB_PRICES"):
        monkeypatch.delenv(var, raising=False)


def cfg(model: str = "echo", **params: Any) -> SamplingConfig:
    return SamplingConfig(model=model, backend="openai", params=params)


def do_run(tmp_path: Path, url: str, config: SamplingConfig, *, n: int = 3, k: int = 2, problems=None, options=None,
           **kw: Any):  # fmt: skip
    """Run "r" in ``tmp_path/store.db``: ``k`` samples of ``n`` arithmetic problems (or ``problems``)."""
    return run("r", f"openai:{url}", store=str(tmp_path / "store.db"), backend_options={**FAST, **(options or {})},
               policy_args={"k": k}, problems=problems or arithmetic_problems(n=n), configs=[config], **kw)  # fmt: skip


def stored(tmp_path: Path):
    with open_store(str(tmp_path / "store.db")) as st:
        return st.get_run("r"), st.samples("r")
