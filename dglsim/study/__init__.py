"""Studies: configs, the results store, the runner, figures and tables (the only layer that plots)."""

from dglsim.study.config import PROFILES, RunConfig, StudySpec, list_studies, load_study, parse_assignment
from dglsim.study.store import ResultsStore

__all__ = ["PROFILES", "ResultsStore", "RunConfig", "StudySpec", "list_studies", "load_study", "parse_assignment", "run_study"]


def __getattr__(name: str):
    # The runner imports torch and seaborn; load it only when asked for.
    if name == "run_study":
        from dglsim.study.runner import run_study

        return run_study
    raise AttributeError(name)
