"""The agent registry tells a missing optional package apart from a broken module: the first is
``AgentUnavailable`` (the comparison lists the agent as needing an extra), the second must fail
loudly (a comparison once skipped agents whose module failed to import mid-run)."""

from __future__ import annotations

import sys

import pytest

from pbhno_gym.agents import make_agent
from pbhno_gym.agents.base import AgentUnavailable

MODULE = "pbhno_gym.agents.casadi_nmpc"


def test_a_missing_optional_package_makes_the_agent_unavailable(monkeypatch):
    monkeypatch.delitem(sys.modules, MODULE, raising=False)  # re-import it, without casadi
    monkeypatch.setitem(sys.modules, "casadi", None)  # import casadi -> ModuleNotFoundError
    with pytest.raises(AgentUnavailable, match=r"pbhno-gym\[control\]"):
        make_agent("casadi_nmpc")


def test_a_broken_module_of_the_package_is_not_reported_as_a_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, MODULE, None)  # our own module fails to import
    with pytest.raises(ImportError) as info:
        make_agent("casadi_nmpc")
    assert not isinstance(info.value, AgentUnavailable)
    assert MODULE in str(info.value)
