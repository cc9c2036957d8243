"""Turn a problem and a sampling configuration into what a model is sent."""

from __future__ import annotations

from budgetlab.core import Problem, SamplingConfig
from budgetlab.errors import InputError

__all__ = ["render_messages", "render_text"]


def render_text(problem: Problem, config: SamplingConfig) -> str:
    """The prompt as plain text: ``config.template`` (a ``str.format`` template over ``prompt``
    and the problem's metadata; default ``"{prompt}"``) applied to the problem."""
    if problem.prompt is None:
        if problem.messages:
            return "\n\n".join(str(m.get("content", "")) for m in problem.messages)
        raise InputError(f"problem {problem.id!r} has no prompt; give each problem a 'prompt' (or 'messages')")
    template = config.template or "{prompt}"
    try:
        return template.format(prompt=problem.prompt, **dict(problem.metadata))
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"prompt template {template!r} of configuration {config.name!r} cannot be filled for problem "
            f"{problem.id!r} ({type(exc).__name__}: {exc}); use {{prompt}} or metadata fields, and double literal braces"
        ) from None


def render_messages(problem: Problem, config: SamplingConfig) -> list[dict[str, str]]:
    """Chat messages: the problem's own, or one user message of :func:`render_text`; a
    ``system`` parameter of the configuration becomes a system message first."""
    if problem.messages and problem.prompt is None:
        messages = [dict(m) for m in problem.messages]
    else:
        messages = [{"role": "user", "content": render_text(problem, config)}]
    system = config.params.get("system")
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": str(system)})
    return messages
