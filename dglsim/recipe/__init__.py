"""From a validated RunConfig to the objects a run needs, each built in one place: the data and
its loaders, the declared cluster and the pipeline spec, the link codecs, the random streams,
the rows every run reports alike, and the run's provenance. The study layer and the real ranks
(dglsim.ranks) both build their runs here; this package imports neither.
"""

from dglsim.recipe.config import RunConfig, parse_assignment

__all__ = ["RunConfig", "parse_assignment"]
