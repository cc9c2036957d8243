"""Tools for testing code that talks to model servers: an OpenAI-compatible server that fails on
request (:class:`FaultyServer`); standard library only."""

from budgetlab.testing.faulty_server import Fault, FaultyServer, RecordedRequest, count_tokens, default_answer

__all__ = ["Fault", "FaultyServer", "RecordedRequest", "count_tokens", "default_answer"]
