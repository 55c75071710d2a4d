"""`python -m core <command>`."""
import atexit
import os
import sys
import threading

from core.cli import main

code = main()
# The interpreter's own teardown (freeing every module of pandas, scikit-learn, scipy) takes
# 0.3-0.9 s after the command is done, a fifth of a 1,000,000-row `drift`. When no other thread
# is left to wait for, the exit handlers are run and the process ends without it.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except OSError:  # a closed pipe: let the normal exit report it
    sys.exit(code)
if threading.active_count() == 1:
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if isinstance(code, int) else 1)
sys.exit(code)
