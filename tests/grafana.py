"""The dashboard generator (``config/grafana/generate.py``, a script, not a
module of the package), loaded for the tests that compare its output."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import ROOT

GENERATE = ROOT / "config" / "grafana" / "generate.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", GENERATE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
