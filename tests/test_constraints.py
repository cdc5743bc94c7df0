"""Every declared rule rejects each of its invalid examples with a message that names the
parameter, the rule and the value (table-driven: the rows are the constraint tables)."""

import pytest

from dglsim.errors import InvalidArgument
from dglsim.models import NetworkSpec
from dglsim.study import RunConfig
from dglsim.train import OptimConfig, TrainConfig

TABLES = [(cls, name, c) for cls in (RunConfig, NetworkSpec, OptimConfig, TrainConfig) for name, c in cls.CONSTRAINTS.items()]
CASES = [(cls, name, c, bad) for cls, name, c in TABLES for bad in c.invalid_examples]


@pytest.mark.parametrize(("cls", "name", "constraint", "bad"), CASES, ids=[f"{c.__name__}.{n}={b!r}" for c, n, _, b in CASES])
def test_rejects_invalid_value_naming_key_rule_and_value(cls, name, constraint, bad):
    with pytest.raises(InvalidArgument) as info:
        cls(**{name: bad})
    message = str(info.value)
    assert repr(name) in message and constraint.rule in message and repr(bad) in message


@pytest.mark.parametrize(("cls", "name", "constraint"), TABLES, ids=[f"{c.__name__}.{n}" for c, n, _ in TABLES])
def test_defaults_satisfy_their_rules(cls, name, constraint):
    assert constraint.holds(getattr(cls(), name))


@pytest.mark.parametrize("key", sorted(set(NetworkSpec.CONSTRAINTS) | set(OptimConfig.CONSTRAINTS) | set(TrainConfig.CONSTRAINTS)))
def test_run_config_key_reaches_the_part_that_owns_its_rule(key):
    """A bad value set on the flat RunConfig is rejected under the same key name."""
    owner = next(cls for cls in (NetworkSpec, OptimConfig, TrainConfig) if key in cls.CONSTRAINTS)
    bad = owner.CONSTRAINTS[key].invalid_examples[0]
    with pytest.raises(InvalidArgument, match=repr(key)):
        RunConfig(**{key: bad})


def test_cross_field_rules():
    with pytest.raises(InvalidArgument, match="'splits' of NetworkSpec must hold k-1 = 2"):
        NetworkSpec(k=3, splits=(2,))
    with pytest.raises(InvalidArgument, match="unknown key 'widht'"):
        RunConfig.from_dict({"widht": 3}, where="test")
