"""``python bench/select.py``: the name issue 4 gives the best-model identification bench. It runs
``bench/selection.py`` with the same arguments and output.

The bench itself lives under the longer name because a file called ``select.py`` comes first on
the import path of every script in this folder and would hide the standard library's ``select``
module (which ``subprocess``, ``asyncio`` and ``concurrent.futures`` import). So this file is
two things: run as a script, it loads the standard ``select`` with its own folder off the path
and hands over to ``selection.py``; imported as ``select`` by another script here, it puts the
standard module in its own place in ``sys.modules``, which is what that import then returns.
"""

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent


def _standard_select():  # type: ignore[no-untyped-def]
    saved_path, saved_module = sys.path[:], sys.modules.pop("select", None)
    sys.path[:] = [p for p in saved_path if Path(p or ".").resolve() != _here]
    try:
        import select

        return select
    except BaseException:
        if saved_module is not None:
            sys.modules["select"] = saved_module
        raise
    finally:
        sys.path[:] = saved_path


if __name__ == "__main__":
    _standard_select()
    import runpy

    runpy.run_path(str(_here / "selection.py"), run_name="__main__")
else:
    sys.modules[__name__] = _standard_select()
