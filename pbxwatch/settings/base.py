"""What every part of the configuration shares: the strict model, secrets
and the one-line errors."""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file and key."""


def read_secret(key: str, env: str | None, file: Path | None) -> str | None:
    """A secret from its file (first) or its environment variable, read when
    needed and never from the YAML; ``None`` when neither gives one."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_file: cannot read {file}: {exc}") from exc
    return (os.environ.get(env) or None) if env else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def known_zone(v: str) -> str:
    """``v`` if it is a time zone this machine knows, else a ValueError."""
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {v!r}") from exc
    return v


def host_port(v: str) -> str:
    """A ``listen`` value: ``host:port`` with a port that can be bound."""
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {v!r}")
    return v


class _Listening:
    """A server's ``listen`` address (declared and validated, with
    :func:`host_port`, by the model), read as host and port.  A plain mixin,
    not a model: a field declared here would come first in every model and
    be validated before the fields its model's validators look at."""

    if TYPE_CHECKING:  # for the type checker only: pydantic would make it a field
        listen: str

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if err["loc"] and err["loc"][-1] == "secret":
                msg += " (secrets never go in the YAML: use ami.secret_env or ami.secret_file)"
        lines.append(f"  {_format_loc(err['loc'])}: {msg}")
    if len(lines) == 2:  # one mistake: one line, the key first
        return f"{source}: {lines[1].strip()}"
    return "\n".join(lines)
