"""`recsaver doctor`: is this install able to run the default pipeline, on this machine?

Each check is a row with a status and, when it is not ok, the fix. The llama.cpp generation runs in a
child process, so a native crash (the AMX segfault of a -march=native build) is reported with its
signal instead of killing the doctor. `make install` ends with it.
"""

from .checks import Check, run_checks
from .probe import ProbeResult, run_probe

__all__ = ["Check", "ProbeResult", "run_checks", "run_probe"]
