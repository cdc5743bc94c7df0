"""The deterministic discrete-event core (no torch)."""

from dglsim.engine.core import LATE, NORMAL, URGENT, Environment

__all__ = ["Environment", "LATE", "NORMAL", "URGENT"]
