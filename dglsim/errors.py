"""The errors dglsim raises at its boundaries."""


class InvalidArgument(ValueError):
    """A parameter broke a declared rule. The message names the parameter, the rule and the value."""


class DataError(RuntimeError):
    """A data file is absent, corrupt or unknown. The message says which file, what was
    expected and how to fix it."""
