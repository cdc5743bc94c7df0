"""proofs/ and the tests are tied both ways: every claim has a check, every check exists and
names a claim, and each claim's checks are the same in the documents and in the test markers."""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLAIM = re.compile(r"^\*\*Claim ([A-Za-z0-9-]+)\b")
CHECK = re.compile(r"^- claim ([A-Za-z0-9-]+): (tests/\S+\.py)::(test_\w+)\s*$")


def _documents():
    claims, checks = {}, defaultdict(set)
    for doc in sorted((ROOT / "proofs").glob("*.md")):
        for line in doc.read_text().splitlines():
            if m := CLAIM.match(line):
                claims[m.group(1)] = doc.name
            if m := CHECK.match(line):
                checks[m.group(1)].add((m.group(2), m.group(3)))
    return claims, checks


def _markers():
    """(file, test) for every test function, and the claims its pytest.mark.claim markers name."""
    tests, marked = set(), defaultdict(set)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                tests.add((rel, node.name))
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "claim"
                            and deco.args and isinstance(deco.args[0], ast.Constant)):
                        marked[deco.args[0].value].add((rel, node.name))
    return tests, marked


def test_every_claim_has_a_check_and_every_check_exists():
    claims, checks = _documents()
    tests, _ = _markers()
    assert claims, "no claims found in proofs/"
    assert not [c for c in claims if not checks.get(c)], "claims without a check"
    assert not [c for c in checks if c not in claims], "checks naming a missing claim"
    missing = sorted(f"{f}::{t}" for entries in checks.values() for f, t in entries if (f, t) not in tests)
    assert not missing, f"checks naming a missing test: {missing}"


def test_markers_and_documents_agree():
    claims, checks = _documents()
    _, marked = _markers()
    assert not sorted(c for c in marked if c not in claims), "tests marked with a claim no document states"
    for claim in claims:
        assert marked.get(claim, set()) == checks.get(claim, set()), claim


def test_the_parser_reads_claims_and_checks():
    """The parser sees what it must: a claim line, a check line, a marker."""
    assert CLAIM.match("**Claim rate.** With ...").group(1) == "rate"
    assert CHECK.match("- claim rate: tests/theory/test_descent.py::test_x").groups() == ("rate", "tests/theory/test_descent.py", "test_x")
    assert CHECK.match("- claim rate: tests/theory/test_descent.py") is None
