"""The live processes of one test run, found by a tag in their environment (every child of the
run inherits it): what the fault tests check is gone after a kill. Linux: reads /proc."""

from pathlib import Path

TAG_VAR = "DGLSIM_TEST_RUN"


def tagged(tag: str) -> dict[int, dict[str, str]]:
    """PID -> environment of each live process whose environment carries `tag`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(v.split("=", 1) for v in (entry / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in v)
        except OSError:
            continue
        if env.get(TAG_VAR) == tag:
            found[int(entry.name)] = env
    return found
