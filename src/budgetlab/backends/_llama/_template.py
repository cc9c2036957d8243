"""Render chat messages with the Jinja chat template stored in a GGUF file.

The template is the model's own (``tokenizer.chat_template``), rendered as Hugging Face renders
it (sandboxed Jinja, ``trim_blocks`` and ``lstrip_blocks``, ``add_generation_prompt``), so a
template's defaults are kept: SmolLM2's, for example, adds its default system message when the
conversation has none. llama.cpp's built-in ``llama_chat_apply_template`` only recognises
templates by pattern and would drop such defaults.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from budgetlab.errors import InputError

__all__ = ["ChatTemplate"]


class ChatTemplate:
    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        try:
            import jinja2
            from jinja2.sandbox import ImmutableSandboxedEnvironment
        except ImportError:  # llama-cpp-python depends on jinja2, so this is rare
            raise InputError(
                "the embedded backend needs 'jinja2' to apply the model's chat template; "
                "install it with: pip install jinja2 (or set chat=false in the configuration)"
            ) from None

        def raise_exception(message: str) -> None:
            raise jinja2.exceptions.TemplateError(message)

        def strftime_now(fmt: str) -> str:
            return datetime.datetime.now().strftime(fmt)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = strftime_now
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._jinja = jinja2
        try:
            self._template = env.from_string(source)
        except jinja2.exceptions.TemplateError as exc:
            raise InputError(
                f"the model's chat template cannot be parsed ({exc}); set chat=false in the configuration "
                "to send the plain prompt"
            ) from None

    def render(self, messages: Sequence[dict[str, Any]]) -> str:
        try:
            return self._template.render(
                messages=list(messages),
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except self._jinja.exceptions.TemplateError as exc:
            raise InputError(
                f"the model's chat template refused these messages ({exc}); check the roles and order of the "
                "problem's messages, or set chat=false in the configuration"
            ) from None
