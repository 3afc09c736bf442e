"""Stand-in job for the launcher contract suite: runs until the test tells it how to end.

The test writes ``0`` (succeed) or ``1`` (fail) to ``$CONTRACT_CONTROL_DIR/$QM_JOB_NAME``; the
worker then leaves the exit file the local launcher reads for workers it adopted, as the SDK
does, and exits with that code. A SIGTERM ends it at once (the default action).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    control = Path(os.environ["CONTRACT_CONTROL_DIR"]) / os.environ["QM_JOB_NAME"]
    # A file is all the test and this process share, so polling it is the way to wait.
    while not control.exists():
        time.sleep(0.02)
    code = int(control.read_text())
    exit_file = os.environ.get("QM_EXIT_FILE")
    if exit_file:
        outcome = {"outcome": "finished" if code == 0 else "error"}
        tmp = Path(exit_file + ".tmp")
        tmp.write_text(json.dumps(outcome))
        tmp.replace(exit_file)
    return code


if __name__ == "__main__":
    sys.exit(main())
