"""dglsim: simulation and theory verification for Decoupled Greedy Learning (arXiv 2106.06401).

Subpackages: `data`, `models`, `train` (torch); `engine`, `delays`, `buffers`, `sim` (no
torch: a timing-only simulation never imports it); `study` (configs, results, figures).
"""

from importlib import metadata

try:
    __version__ = metadata.version("dglsim")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
