"""The benchmarks' `omo serve` in a subprocess (kept here for the scripts that import it)."""

from omo.testing.serve import free_port, omo_serve

__all__ = ["free_port", "omo_serve"]
