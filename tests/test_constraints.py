"""Every declared rule rejects each of its invalid examples with a message that names the
parameter, the rule and the value (table-driven: the rows are the constraint tables, found by
walking the package, so a table cannot exist without its tests)."""

import importlib
import inspect
import pkgutil

import pytest

import dglsim
from dglsim.delays import AtLeast, Constant, Replay, Scaled, Straggler
from dglsim.errors import InvalidArgument
from dglsim.models import NetworkSpec
from dglsim.recipe.config import RunConfig
from dglsim.train import OptimConfig, TrainConfig

# the arguments a class needs besides the one under test (its required fields)
BASES = {
    "PipelineSpec": {"mode": "sync", "workers": 1, "steps": 1, "compute": (Constant(0.1),)},
    "Constant": {"value": 1.0},
    "Scaled": {"base": Constant(1.0), "factor": 2.0},
    "Straggler": {"base": Constant(1.0), "q": 0.1, "factor": 2.0},
    "AtLeast": {"base": Constant(1.0), "floor": 0.5},
    "Replay": {"values": (1.0,)},
    "ReplayBuffer": {"capacity": 2},
}
EXPECTED = {"RunConfig", "NetworkSpec", "OptimConfig", "TrainConfig", "QuantConfig", "VQConfig", "PipelineSpec", "ReplayBuffer",
            "Constant", "Scaled", "Straggler", "Replay", "AtLeast", "RankSettings"}


def _tables() -> dict[type, dict]:
    found = {}
    for info in pkgutil.walk_packages(dglsim.__path__, "dglsim."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and isinstance(getattr(cls, "CONSTRAINTS", None), dict):
                found[cls] = cls.CONSTRAINTS
    return found


TABLES = [(cls, name, c) for cls, table in sorted(_tables().items(), key=lambda kv: kv[0].__name__) for name, c in table.items()]
CASES = [(cls, name, c, bad) for cls, name, c in TABLES for bad in c.invalid_examples]


def test_every_config_and_spec_declares_its_rules_as_a_table():
    assert EXPECTED <= {cls.__name__ for cls in _tables()}


@pytest.mark.parametrize(("cls", "name", "constraint", "bad"), CASES, ids=[f"{c.__name__}.{n}={b!r}" for c, n, _, b in CASES])
def test_rejects_invalid_value_naming_key_rule_and_value(cls, name, constraint, bad):
    with pytest.raises(InvalidArgument) as info:
        cls(**(BASES.get(cls.__name__, {}) | {name: bad}))
    message = str(info.value)
    assert repr(name) in message and constraint.rule in message and repr(bad) in message


@pytest.mark.parametrize(("cls", "name", "constraint"), TABLES, ids=[f"{c.__name__}.{n}" for c, n, _ in TABLES])
def test_defaults_satisfy_their_rules(cls, name, constraint):
    assert constraint.holds(getattr(cls(**BASES.get(cls.__name__, {})), name))


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


def test_a_long_value_is_cut_short_in_the_message():
    with pytest.raises(InvalidArgument, match=r"got \(1\.0, 1\.0, .*\.\.\. \(1001 values\)$"):
        Replay((1.0,) * 1000 + (-1.0,))


def test_the_delay_models_with_a_base_reject_a_base_that_is_not_a_model():
    for cls in (Scaled, Straggler, AtLeast):
        with pytest.raises(InvalidArgument, match=f"'base' of {cls.__name__} must be a delay model, got 1.0"):
            cls(**(BASES[cls.__name__] | {"base": 1.0}))
