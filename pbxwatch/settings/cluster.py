"""The ``cluster`` section: a hot standby of two or more instances."""

from __future__ import annotations

from pydantic import Field

from pbxwatch.settings.base import _Model


class ClusterSettings(_Model):
    """Two or more ``run`` processes on one PostgreSQL share the PBXs.

    Each follows every PBX (its own AMI session and core), but only the
    owner of a PBX's lease writes its rows and publishes its alerts; the
    others take over when the owner's lease lapses.  Every instance must
    have the same ``pbxs`` (or ``ami``)."""

    enabled: bool = False
    instance: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="this instance's name in logs, metrics and MQTT (default: host name)",
    )
    lease_seconds: float = Field(
        6.0,
        ge=2.0,
        le=60.0,
        description="a lease runs this long unless renewed (a third of it is the renewal "
        "pace); a dead owner's PBXs are taken over within about 1.3 times this",
    )
    keep_seconds: float = Field(
        60.0,
        gt=0,
        description="how long a standby keeps the records of a PBX it does not own, to "
        "write what the owner had not committed when it died",
    )
    ready_max_seconds: float = Field(
        300.0,
        gt=0,
        description="a joining instance is given its share once it has seen every call in "
        "progress from its start, or at the latest this long after its login",
    )
