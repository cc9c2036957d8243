"""The run loop and the entry point that starts or resumes a run."""

from budgetlab.runner._api import PreparedRun, prepare, resume_or_create, run
from budgetlab.runner._import import import_recorded
from budgetlab.runner._loop import Progress, RunOutcome, execute

__all__ = ["PreparedRun", "prepare", "Progress", "import_recorded", "RunOutcome", "execute", "resume_or_create", "run"]
