"""``--config`` text: sampling parameters, and the escapes a shell argument needs for text."""

from __future__ import annotations

import pytest

from budgetlab.core.spec import parse_config
from budgetlab.errors import InputError


def test_config_text_gives_model_label_template_and_parameters() -> None:
    config = parse_config("model=smollm2,temperature=0.7,max_tokens=64,label=smol,chat=false", "embedded")
    assert (config.model, config.name, config.backend) == ("smollm2", "smol", "embedded")
    assert dict(config.params) == {"temperature": 0.7, "max_tokens": 64, "chat": False}


def test_newline_tab_and_backslash_escapes_in_stop_system_and_template() -> None:
    config = parse_config(r"model=m,stop=\n,system=be brief\tplease,template=Q: {prompt}\nA:,note=a\nb", "openai")
    assert config.params["stop"] == "\n" and config.params["system"] == "be brief\tplease"
    assert config.template == "Q: {prompt}\nA:"
    assert config.params["note"] == r"a\nb"  # other text is kept as written
    assert parse_config(r"model=m,stop=a\\n", "openai").params["stop"] == "a\\n"  # an escaped backslash


def test_a_config_without_a_model_is_one_line() -> None:
    with pytest.raises(InputError, match="names no model"):
        parse_config("temperature=0.7", "embedded")
