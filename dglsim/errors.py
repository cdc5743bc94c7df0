"""The errors dglsim raises at its boundaries."""


class InvalidArgument(ValueError):
    """A parameter broke a declared rule. The message names the parameter, the rule and the value."""


class DataError(RuntimeError):
    """A data file is absent, corrupt or unknown. The message says which file, what was
    expected and how to fix it."""


def warnings_on_one_line() -> None:
    """CLIs: print each warning as one line, `warning: ...`, without the source line that raised it."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
