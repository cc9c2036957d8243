"""Problem sets: plain JSONL problem files (benchmark loaders plug in here)."""

from budgetlab.tasks._jsonl import load_problems

__all__ = ["load_problems"]
