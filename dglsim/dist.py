"""The former name of dglsim.ranks, kept for one release so that `python -m dglsim.dist ...`
and `torchrun ... -m dglsim.dist ...` still run (with a note naming the new module). The package
was renamed because `dist/` is the packaging convention for build output, which tools skip."""

import os
import runpy
import sys

if __name__ == "__main__":
    if os.environ.get("RANK", "0") == "0":  # once per run, not once per rank
        print("note: dglsim.dist is now dglsim.ranks (python -m dglsim.ranks); the old name goes in the next release", file=sys.stderr)
    runpy.run_module("dglsim.ranks", run_name="__main__", alter_sys=True)
