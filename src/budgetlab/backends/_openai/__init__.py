"""The OpenAI-compatible HTTP backend (``--backend openai:URL``); needs ``pip install 'budgetlab[openai]'``
(httpx), imported only when the backend is built."""

from budgetlab.backends._openai._backend import OpenAIBackend

__all__ = ["OpenAIBackend"]
