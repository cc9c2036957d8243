"""``bench/select.py``, the name issue 4 gives the best-arm identification benchmark: runs
bench/selection.py with the same arguments (see that file for what it measures).

The script lives in selection.py because a module named ``select`` in the script's folder would
shadow the standard library's ``select`` (imported by subprocess and asyncio) for every import.
"""

import os
import runpy
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.argv[0] = os.path.join(_here, "selection.py")
runpy.run_path(sys.argv[0], run_name="__main__")
