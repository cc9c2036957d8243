from budgetlab.cli._main import entry

entry()
