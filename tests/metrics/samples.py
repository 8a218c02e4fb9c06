"""Reading a prometheus-client registry in tests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


def total(registry: CollectorRegistry, sample: str, **labels: str) -> float:
    """Sum of the samples named ``sample`` whose labels include ``labels``."""
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )
