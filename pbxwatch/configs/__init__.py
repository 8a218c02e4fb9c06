"""Configurations shipped inside the package.

``lab.yaml`` is the Exempelkommun lab PBX (``../shared/ami-lab/``): the
directory the simulator plays and the recordings were made on, so that
``pbxwatch demo`` and ``pbxwatch simulate`` run from any folder after
``pip install``.  ``example.yaml`` is the commented example of every
setting, and what ``pbxwatch init`` starts a real PBX's configuration from.
The repository's ``config/lab.yaml`` and ``config/pbxwatch.example.yaml``
are links to these files, so there is one copy of each.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the name ``--config`` takes for a shipped configuration
BUILTIN = {"lab": "lab.yaml", "example": "example.yaml"}


def path_of(name: str) -> Path:
    """The file of a shipped configuration (``lab`` or ``example``)."""
    ref = resources.files(__package__).joinpath(BUILTIN[name])
    return Path(str(ref))


def text_of(name: str) -> str:
    return resources.files(__package__).joinpath(BUILTIN[name]).read_text(encoding="utf-8")
