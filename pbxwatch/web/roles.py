"""Who may see what in the console.

Roles come from the identity provider's groups through ``role_map`` (or
are ``operations`` in the loopback-only ``none`` mode):

- ``operations``: everything, caller numbers in clear;
- ``it``: the wallboard and pbxwatch's health, never a caller number and
  never a call;
- ``chief:<unit>`` and ``staff:<unit>``: their unit's queues, calls and
  incidents; caller numbers in clear only when the unit has
  ``show_caller_numbers`` (as in its chiefs' alerts), masked otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pbxwatch.core.directory import Directory

NumberAccess = Literal["clear", "masked", "none"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A logged-in person (or the loopback demo) and their roles."""

    user: str
    roles: frozenset[str]

    @property
    def operations(self) -> bool:
        return "operations" in self.roles

    @property
    def it(self) -> bool:
        return "it" in self.roles

    def unit_role(self, unit: str | None) -> str | None:
        """``chief`` or ``staff`` when the principal has that unit (chief wins)."""
        if unit is None:
            return None
        if f"chief:{unit}" in self.roles:
            return "chief"
        if f"staff:{unit}" in self.roles:
            return "staff"
        return None

    @property
    def own_units(self) -> frozenset[str]:
        return frozenset(
            r.partition(":")[2] for r in self.roles if r.startswith(("chief:", "staff:"))
        )

    @property
    def any_role(self) -> bool:
        return self.operations or self.it or bool(self.own_units)

    @property
    def sees_health(self) -> bool:
        return self.operations or self.it

    @property
    def sees_calls(self) -> bool:
        """Call search, timelines and incidents."""
        return self.operations or bool(self.own_units)

    def call_units(self) -> frozenset[str] | None:
        """The units whose calls the principal may see; ``None`` = all."""
        return None if self.operations else self.own_units

    def sees_unit(self, unit: str | None) -> bool:
        return self.operations or self.it or self.unit_role(unit) is not None

    def sees_call_of(self, unit: str | None) -> bool:
        return self.operations or self.unit_role(unit) is not None

    def number_access(self, unit: str | None, directory: Directory) -> NumberAccess:
        if self.operations:
            return "clear"
        role = self.unit_role(unit)
        if role is None:
            return "none"
        assert unit is not None
        return "clear" if directory.unit(unit).show_caller_numbers else "masked"

    def clear_everywhere(self, directory: Directory) -> bool:
        """Numbers in clear in every call the principal can see."""
        units = self.call_units()
        if units is None:
            return True
        return all(self.number_access(u, directory) == "clear" for u in units)


def roles_of(claims: Iterable[str], role_map: Mapping[str, list[str]]) -> frozenset[str]:
    """The console roles of a person with these group claims."""
    return frozenset(role for claim in claims for role in role_map.get(claim, ()))


def claim_values(value: object) -> list[str]:
    """A groups claim as a list: a JSON list, or one string (comma-separated)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []
