"""Episode collection and the dataset format; the counter-based RNG."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pbhno_gym.data import DatasetError, collect_episodes, load_dataset, save_dataset
from pbhno_gym.utils.rng import (
    CounterRNG,
    seed_to_key,
    splitmix64,
    splitmix64_numpy,
    splitmix64_reference,
    words_numpy,
    words_torch,
)


def test_splitmix_matches_reference_and_streams_are_batch_independent():
    xs = [0, 1, 2**40 + 7, 2**63 - 1, -5]
    got = splitmix64(torch.tensor(xs, dtype=torch.int64)).tolist()
    want = [splitmix64_reference(x % 2**64) for x in xs]
    assert [g % 2**64 for g in got] == want
    a, b = CounterRNG(3), CounterRNG(1)
    keys = torch.tensor([seed_to_key(s) for s in (5, 6, 7)])
    a.seed(keys)
    b.seed(keys[1:2])
    assert torch.equal(a.uniform(3, 4)[1], b.uniform(3, 4)[0])
    u = CounterRNG(1)
    u.seed(keys[:1])
    draws = torch.cat([(u.advance(), u.uniform(1, 1000))[1] for _ in range(20)], 1)
    assert 0.47 < draws.mean() < 0.53 and draws.min() >= 0 and draws.max() < 1
    z = u.normal(2, 20000)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03


def test_cpu_words_hashed_in_numpy_equal_the_torch_hash():
    """On CPU the words come from numpy's uint64 hash; they equal torch's int64 hash (what other
    devices run) bit for bit, for keys and counters with the top bit set."""
    xs = np.array([0, 1, 2**40 + 7, 2**63 - 1, 2**64 - 5], dtype=np.uint64)
    assert splitmix64_numpy(xs).tolist() == [splitmix64_reference(int(x)) for x in xs]
    keys = torch.tensor([seed_to_key(s) for s in range(6)])
    assert bool((keys < 0).any()) and bool((keys > 0).any())
    ctr = torch.tensor([0, 5, 2**62 + 3, 2**63 - 1, 17, 1])
    for stream in (0, 7, 51):
        for n in (1, 5):
            got, ref = words_numpy(keys, ctr, stream, n), words_torch(keys, ctr, stream, n)
            assert got.dtype == torch.int64 and got.shape == (6, n) and torch.equal(got, ref)
    rng = CounterRNG(6)  # a CPU generator draws through numpy, rows included
    rng.seed(keys)
    rng.counters = ctr
    rows = torch.tensor([4, 1])
    assert torch.equal(rng.bits(9, 3, rows), words_torch(keys[rows], ctr[rows], 9, 3))


@pytest.mark.parametrize("batch", [1, 3])
def test_draws_inside_torch_compile_equal_eager(batch):
    """A compiled caller gets the eager words (``CounterRNG.bits`` runs eagerly): inductor's C++
    for the wrapping int64 hash gave other words at batch 1 (torch 2.13)."""
    rng = CounterRNG(batch)
    rng.seed(torch.tensor([seed_to_key(s) for s in range(batch)]))
    rng.advance()

    def draw(r):
        return r.bits(3, 2), r.uniform(12, 2), r.normal(11, 4)

    torch._dynamo.reset()
    for want, got in zip(draw(rng), torch.compile(draw, dynamic=False)(rng), strict=True):
        assert torch.equal(want, got)


def test_collect_roundtrip_reproducible_and_replayable(tmp_path):
    path = tmp_path / "d.npz"
    ds = collect_episodes("pbhno/Notch-v1", 3, num_envs=2, seed=4, out=path, progress=False, horizon=5)
    loaded = load_dataset(path)
    for k, v in ds.arrays.items():
        np.testing.assert_array_equal(loaded[k], v)
    assert loaded.meta["env_id"] == "pbhno/Notch-v1" and loaded.meta["policy"] == "random_pulse"
    assert loaded["x"].shape == (3, 6, 2, 5) and loaded["L"].shape == (3, 6, 64, 64)
    assert loaded["meas_mask"][:, 0].all()  # everything measured at reset
    assert np.isnan(loaded["meas_values"][~loaded["meas_mask"]]).all()
    again = collect_episodes("pbhno/Notch-v1", 3, num_envs=3, seed=4, progress=False, horizon=5)
    np.testing.assert_array_equal(again["x"], ds["x"])  # batch composition does not matter
    # replay episode 2 alone (float64, so batch-size-dependent BLAS rounding is negligible)
    d64 = collect_episodes(
        "pbhno/Notch-v1", 3, num_envs=3, seed=4, progress=False, horizon=5, dtype=torch.float64
    )
    env = gym.make("pbhno/Notch-v1", horizon=5, dtype=torch.float64)
    obs, _ = env.reset(seed=4 + 2)
    np.testing.assert_allclose(obs, d64["obs"][2, 0], rtol=1e-6, atol=1e-7)
    for t in range(5):
        obs, *_, info = env.step(d64["actions"][2, t].astype(np.float64))
        np.testing.assert_allclose(info["x"], d64["x"][2, t + 1], rtol=1e-5)  # stored as float32
        np.testing.assert_allclose(obs, d64["obs"][2, t + 1], rtol=1e-5, atol=1e-6)


def test_corrupt_and_mismatched_datasets_are_refused(tmp_path):
    path = tmp_path / "d.npz"
    ds = collect_episodes("pbhno/MAPK-v0", 2, num_envs=2, seed=0, out=path, progress=False, horizon=4)
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_dataset(tmp_path / "trunc.npz")
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_dataset(tmp_path / "missing.npz")
    bad = dict(ds.arrays)
    bad["x"] = bad["x"][:, :3]
    with pytest.raises(DatasetError, match=r"array 'x' has shape"):
        save_dataset(tmp_path / "bad.npz", bad, ds.meta)
    assert not (tmp_path / "bad.npz").exists()  # nothing half-written
    bad = dict(ds.arrays)
    bad["actions"] = bad["actions"].copy()
    bad["actions"][0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="'actions' contains NaN"):
        save_dataset(tmp_path / "bad.npz", bad, ds.meta)
    meta = {k: v for k, v in ds.meta.items() if k != "param_names"}
    with pytest.raises(DatasetError, match="meta lacks 'param_names'"):
        save_dataset(tmp_path / "bad.npz", ds.arrays, meta)
    payload = {**ds.arrays, "meta": np.array('{"version": 99}')}
    np.savez(tmp_path / "v99.npz", **payload)
    with pytest.raises(DatasetError, match="format version 99"):
        load_dataset(tmp_path / "v99.npz")


def test_cli_collect(tmp_path):
    from pbhno_gym.cli import main

    out = tmp_path / "m.npz"
    assert (
        main(
            [
                "collect",
                "--env",
                "pbhno/MAPK-v0",
                "--episodes",
                "2",
                "--num-envs",
                "2",
                "--overrides",
                '{"horizon": 3}',
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert load_dataset(out).n_episodes == 2
