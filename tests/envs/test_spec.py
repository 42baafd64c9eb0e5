"""Specs: every id loads, overrides merge, bad fields are named."""

import pytest

from pbhno_gym import ENV_IDS
from pbhno_gym.envs import SpecError, list_specs, load_spec


def test_every_registered_id_has_a_valid_spec():
    base = {"pbhno/Wnt-v1", "pbhno/Notch-v1", "pbhno/NotchLattice-v0", "pbhno/MAPK-v0"}
    unknown = {"pbhno/Wnt-Unknown-v1", "pbhno/Notch-Unknown-v0", "pbhno/MAPK-Unknown-v0"}
    assert set(ENV_IDS) == base | unknown
    for env_id, path in list_specs().items():
        spec = load_spec(env_id)
        assert spec.id == env_id and path.suffix == ".toml" and spec.description


def test_overrides_merge_nested_and_alias():
    spec = load_spec(
        "pbhno/Wnt-v1",
        {
            "horizon": 12,
            "observation": {"sample_prob": 1.0},
            "parameters": {"k_on": 0.02},
            "obs_mode": "full",
        },
    )
    assert spec.horizon == 12 and spec.observation.sample_prob == 1.0
    assert spec.observation.species == ("T",)  # untouched fields keep the file's values
    assert spec.parameters == {"k_on": 0.02} and spec.observation.mode == "full"
    lat = load_spec("pbhno/NotchLattice-v0", {"parameters": {"k_on": 0.05}})
    assert lat.parameters == {"D_L": 20.0, "lambda_L": 0.3, "k_on": 0.05}


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"horizn": 3}, r"unknown field\(s\) spec.horizn"),
        ({"observation": {"sampl_prob": 1}}, r"spec.observation.sampl_prob"),
        ({"horizon": "long"}, r"spec.horizon must be an integer"),
        ({"horizon": 0}, r"spec.horizon must be >= 1"),
        ({"observation": {"sample_prob": 0.0}}, r"spec.observation.sample_prob must be in \(0, 1\]"),
        ({"pathway": "shh"}, r"spec.pathway must be one of"),
        ({"parameters": {"k_on": -1.0}}, r"spec.parameters.k_on must be positive"),
        ({"budgets": {"ligand_source": float("nan")}}, r"spec.budgets.ligand_source must be a finite number"),
        ({"target": {"kind": "stripes"}}, r"spec.target.kind must be one of .*setpoint.*, got .stripes."),
        ({"layout": "big"}, r"spec.layout must be a table"),
    ],
)
def test_invalid_fields_are_named(overrides, match):
    with pytest.raises(SpecError, match=match):
        load_spec("pbhno/Wnt-v1", overrides)


def test_semantic_errors_surface_at_make():
    import gymnasium as gym

    with pytest.raises(ValueError, match="spec.parameters: unknown parameter 'k_onn'"):
        gym.make("pbhno/Wnt-v1", parameters={"k_onn": 1.0})
    with pytest.raises(ValueError, match="spec.budgets.dkk: no such control"):
        gym.make("pbhno/Wnt-v1", budgets={"dkk": 1.0})
    with pytest.raises(ValueError, match="spec.observation.species: 'Q' is not a species"):
        gym.make("pbhno/Wnt-v1", observation={"species": ["Q"]})
    with pytest.raises(ValueError, match="Simulator.substeps=1"):
        gym.make("pbhno/Notch-v1", substeps=1)


def test_importing_the_package_registers_ids_without_torch():
    """``import pbhno_gym`` registers every id but loads torch only when an env is built (the
    env classes import on first use), so light tools and forking parents stay cheap."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym, pbhno_gym\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert set(pbhno_gym.ENV_IDS) <= set(gym.registry)\n"
        "from pbhno_gym.envs import PathwayEnv\n"
        "assert 'torch' in sys.modules and PathwayEnv.__name__ == 'PathwayEnv'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
