"""The run loop, the entry point that starts or resumes a run, and judging a run again."""

from budgetlab.runner._api import PreparedRun, prepare, resume_or_create, run
from budgetlab.runner._import import import_recorded
from budgetlab.runner._judge import JudgeOutcome, judge_again
from budgetlab.runner._loop import Progress, RunOutcome, execute

__all__ = [
    "JudgeOutcome", "PreparedRun", "prepare", "Progress", "import_recorded", "judge_again", "RunOutcome", "execute",
    "resume_or_create", "run",
]  # fmt: skip
