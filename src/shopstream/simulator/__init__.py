"""The simulated world: a catalog, customers, and their orders (with labelled spikes)."""

from shopstream.simulator.model import DemandModel, Spike, plan_spikes
from shopstream.simulator.seed import SeedResult, seed

__all__ = ["DemandModel", "SeedResult", "Spike", "plan_spikes", "seed"]
