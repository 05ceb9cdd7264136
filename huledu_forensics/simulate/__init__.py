"""Scenario simulator: deterministic HuleEdu worlds for the demo and the tests.

Each scenario is a :class:`~huledu_forensics.world.World` (database rows with DDL and enum label sets,
container states, ``docker logs --timestamps`` lines) built from a seed: the same seed gives the same
world, and every id is drawn from ``random.Random``. Usage::

    from huledu_forensics.simulate import build_world, scenario_names
    world = build_world("seed_variant_a", seed=0)
"""

from __future__ import annotations

from ..world import World
from .ddl import build_ddl
from .scenarios import SCENARIOS, build

__all__ = ["SCENARIOS", "build_ddl", "build_world", "scenario_names"]


def scenario_names() -> list[str]:
    """Return the scenario names, in a stable order."""
    return list(SCENARIOS)


def build_world(name: str, seed: int = 0) -> World:
    """Build scenario ``name`` deterministically from ``seed``.

    Raises:
        ValueError: ``name`` is not a scenario; the message lists the valid names.
    """
    return build(name, seed)
