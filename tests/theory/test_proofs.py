"""proofs/ and the tests are tied both ways: every claim has a check and a negative control (a
test showing that the check fails when the claim's hypothesis is broken or its quantity
corrupted), every check and control exists and names a claim, and each claim's checks and
controls are the same in the documents and in the test markers."""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLAIM = re.compile(r"^\*\*Claim ([A-Za-z0-9-]+)\b")
CHECK = re.compile(r"^- claim ([A-Za-z0-9-]+): (tests/\S+\.py)::(test_\w+)\s*$")
CONTROL = re.compile(r"^- control ([A-Za-z0-9-]+): (tests/\S+\.py)::(test_\w+)\s*$")
KINDS = {"claim": CHECK, "control": CONTROL}  # marker name -> the document line that lists it


def _documents():
    """The claims (name -> document) and, per kind (claim: checks, control: negative controls),
    the tests each claim's document lists."""
    claims, listed = {}, {kind: defaultdict(set) for kind in KINDS}
    for doc in sorted((ROOT / "proofs").glob("*.md")):
        for line in doc.read_text().splitlines():
            if m := CLAIM.match(line):
                claims[m.group(1)] = doc.name
            for kind, pattern in KINDS.items():
                if m := pattern.match(line):
                    listed[kind][m.group(1)].add((m.group(2), m.group(3)))
    return claims, listed


def _markers():
    """(file, test) for every test function and, per kind, the claims its pytest.mark.claim and
    pytest.mark.control markers name."""
    tests, marked = set(), {kind: defaultdict(set) for kind in KINDS}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                tests.add((rel, node.name))
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr in KINDS
                            and deco.args and isinstance(deco.args[0], ast.Constant)):
                        marked[deco.func.attr][deco.args[0].value].add((rel, node.name))
    return tests, marked


def test_every_claim_has_a_check_and_a_control_and_each_exists():
    claims, listed = _documents()
    tests, _ = _markers()
    assert claims, "no claims found in proofs/"
    for kind in KINDS:
        assert not [c for c in claims if not listed[kind].get(c)], f"claims without a {kind} test"
        assert not [c for c in listed[kind] if c not in claims], f"{kind} tests naming a missing claim"
        missing = sorted(f"{f}::{t}" for entries in listed[kind].values() for f, t in entries if (f, t) not in tests)
        assert not missing, f"{kind} tests naming a missing test: {missing}"


def test_markers_and_documents_agree():
    claims, listed = _documents()
    _, marked = _markers()
    for kind in KINDS:
        assert not sorted(c for c in marked[kind] if c not in claims), f"tests marked {kind} of a claim no document states"
        for claim in claims:
            assert marked[kind].get(claim, set()) == listed[kind].get(claim, set()), (kind, claim)


def test_a_test_is_a_check_or_a_control_of_a_claim_never_both():
    """A control shows a check failing; the same test cannot also show it holding."""
    _, marked = _markers()
    both = {(c, t) for c, entries in marked["claim"].items() for t in entries} & {(c, t) for c, entries in marked["control"].items() for t in entries}
    assert not both


def test_the_parser_reads_claims_checks_and_controls():
    """The parser sees what it must: a claim line, a check line, a control line."""
    assert CLAIM.match("**Claim rate.** With ...").group(1) == "rate"
    assert CHECK.match("- claim rate: tests/theory/test_descent.py::test_x").groups() == ("rate", "tests/theory/test_descent.py", "test_x")
    assert CHECK.match("- claim rate: tests/theory/test_descent.py") is None
    assert CONTROL.match("- control rate: tests/theory/test_descent.py::test_y").groups() == ("rate", "tests/theory/test_descent.py", "test_y")
    assert CHECK.match("- control rate: tests/theory/test_descent.py::test_y") is None
