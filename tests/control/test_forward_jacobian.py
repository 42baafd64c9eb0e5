"""Forward-mode one-step Jacobians (issue 17): equal to replicated reverse mode and to central
differences in float64, for every planner and estimator setting, eager and through CompiledModel."""

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.control.compiled import CompiledModel
from pbhno_gym.control.jacobian import local_jacobians, local_jacobians_forward
from pbhno_gym.control.mhe import MHEWindow, MovingHorizonEstimator
from pbhno_gym.control.planner import Planner
from pbhno_gym.physics.simulator import SimState

from .helpers import F64, mapk_problems

T = 6


@pytest.fixture(scope="module")
def model():
    # the agents' planning model (floored) of the unknown world: feedback kinetics included
    return SimulatorModel("pbhno/MAPK-Unknown-v0", dtype=F64, state_floor=1e-6, world=True)


def _rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("wrt_theta", [False, True])
@pytest.mark.parametrize("output", ["phenotype", "measure"])
def test_forward_local_jacobians_equal_reverse(model, output, wrt_theta):
    prob = mapk_problems(model, B=3, T=T, seed=7)
    U = _rand((3, T, 2), 1) * model.control_high
    active = _rand((3, T), 2) > 0.3  # frozen (padding) steps too
    a = local_jacobians(model, prob.z0, U, prob.log_theta, getattr(model, output), active, wrt_theta)
    b = local_jacobians_forward(model, prob.z0, U, prob.log_theta, output, active, wrt_theta)
    for name in ("y", "A", "Bu", "Bth", "Yz", "Yu", "Yth"):
        ra, rb = getattr(a, name), getattr(b, name)
        assert (ra is None) == (rb is None)
        if ra is not None:  # same float64 derivative formulas, different association: ~1e-15
            torch.testing.assert_close(rb, ra, rtol=1e-12, atol=1e-13)
    for za, zb in zip(a.z, b.z, strict=True):
        torch.testing.assert_close(zb.x, za.x, rtol=0, atol=0)


@pytest.mark.parametrize("jacobian", ["rows", "condensed", "forward"])
@pytest.mark.parametrize("members", [1, 2])
def test_planner_jacobians_match_central_differences(model, jacobian, members):
    prob = mapk_problems(model, B=2, T=T, seed=4, members=members)
    S = _rand((2, T, 2), 0)
    p = Planner(model, T, jacobian=jacobian)
    e, J = p._track_jacobian(S, prob)
    e_ref, J_ref = Planner(model, T, jacobian="rows")._track_jacobian(S, prob)
    torch.testing.assert_close(e, e_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(J, J_ref, rtol=1e-10, atol=1e-12)
    # central differences, h = 1e-5: truncation ~h^2 |r'''| ~ 1e-10, round-off ~1e-16 / h ~ 1e-11
    h = 1e-5
    for k in (0, 3, 2 * T - 1):
        dS = torch.zeros_like(S)
        dS.view(2, -1)[:, k] = h
        fd = (p._track_residuals(S + dS, prob) - p._track_residuals(S - dS, prob)).reshape(2, -1) / (2 * h)
        torch.testing.assert_close(J[:, :, k], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("estimate_theta", [False, True])
def test_mhe_forward_jacobian_matches_rows_and_central_differences(model, estimate_theta):
    W, B = 5, 2
    lt = model.theta.log_values.expand(B, -1).clone()
    z = mapk_problems(model, B=B, T=T, seed=9).z0
    U = _rand((B, W, 2), 3) * model.control_high * torch.tensor([1.0, 0.3], dtype=F64)
    zs = [z]
    for k in range(W):
        zs.append(model.step(zs[-1], U[:, k], lt))
    y = torch.stack([model.measure(s) for s in zs], 1)
    fresh = _rand(y.shape, 5) < 0.7
    win = MHEWindow(y, fresh, U, torch.tensor([W, 3]))  # problem 1: a younger episode (padding)
    P = lt.shape[1]
    prior, sig = zs[0], torch.full((B,), 0.3, dtype=F64)
    rows = torch.arange(B)
    v = 0.1 * torch.randn(
        B, 3 + (P if estimate_theta else 0), generator=torch.Generator().manual_seed(0), dtype=F64
    )
    if estimate_theta:
        v[:, 3:] += lt
    out = {}
    for jac in ("rows", "forward"):
        est = MovingHorizonEstimator(model, estimate_theta=estimate_theta, jacobian=jac)
        eps = est._eps(prior)
        args = (win, prior, sig, eps, lt, model.theta.log_values, model.theta.prior_sd)
        out[jac] = est._condensed(v, rows, *args) if jac == "forward" else None
        if jac == "rows":
            r = est._residuals(v, rows, *args)
            h = 1e-6
            fd = torch.stack(
                [
                    (est._residuals(v + h * e, rows, *args) - est._residuals(v - h * e, rows, *args))
                    / (2 * h)
                    for e in torch.eye(v.shape[1], dtype=F64)
                ],
                2,
            )
            out[jac] = (r, fd)
    (r1, fd), (r2, J2) = out["rows"], out["forward"]
    torch.testing.assert_close(r2, r1, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(J2, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("B", [1, 3])
def test_compiled_step_jacobian_is_the_eager_one(model, B, monkeypatch):
    """Fast: CompiledModel's plumbing (B = 1 padding, outputs, caching) with dynamo disabled; the
    traced and inductor paths run in the slow test below and in scripts/bench_mpc_decision.py."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    _compare(model, CompiledModel(model), B)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compiled_step_jacobian_traced(model):
    comp = CompiledModel(model, backend="eager")  # dynamo + functorch tracing only
    for B in (1, 3):
        _compare(model, comp, B)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_shrinking_active_sets_reuse_the_compiled_step_jacobian(model):
    """A planner drops converged problems (8, 7, 6, 5, 4, 3 ...): the traced step-Jacobian graph
    specialises on the batch, so CompiledModel pads to power-of-two buckets; 8..5 share one
    graph and 4..3 a second (without padding: six). Each bucket is compiled even past dynamo's
    global recompile limit (set to 1 here; at its default 8, batch 256 fell back to eager).
    Dynamo tracing only (no inductor)."""
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    comp = CompiledModel(model, backend=counter)
    before = torch._dynamo.config.recompile_limit
    # dynamo's own patch, not monkeypatch (whose undo hides dynamo options under pytest >= 9)
    with torch._dynamo.config.patch(recompile_limit=1):
        for B in (8, 7, 6, 5):
            _compare(model, comp, B)
        assert counter.frame_count == 1
        for B in (4, 3):
            _compare(model, comp, B)
        assert counter.frame_count == 2
    assert torch._dynamo.config.recompile_limit == before  # restored for the tests that follow


def _compare(model, comp, B):
    prob = mapk_problems(model, B=B, T=T, seed=11)
    u = _rand((B, 2), 6) * model.control_high
    act = torch.ones(B, dtype=torch.bool)
    lt = prob.log_theta
    ref = model.step_jacobian(prob.z0.x, prob.z0.t, u, lt, act, "measure", True)
    got = comp.step_jacobian(prob.z0.x, prob.z0.t, u, lt, act, "measure", True)
    for a, b in zip(ref, got, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
    assert comp.fast_step_jacobian and Planner(comp, T)._jacobian_mode(prob) == "forward"
    assert Planner(model, T)._jacobian_mode(prob) == "condensed"
    x1 = model.step(SimState(prob.z0.x, None, prob.z0.t), u, lt).x
    torch.testing.assert_close(got[0], x1, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("estimate_theta", "backend"),
    [(True, "inductor"), (True, "aot"), pytest.param(False, "inductor", marks=pytest.mark.slow)],
)
def test_agent_with_compile_takes_the_eager_agents_actions(estimate_theta, backend, monkeypatch):
    """``mpc.compile = true`` changes only how Jacobians are computed (forward mode): in float64
    the closed-loop actions equal the default agent's (compilation itself is switched off here:
    torch.compile returns the function, and the AOT backend's library is the make_fx graph it
    would compile; scripts/bench_mpc_decision.py compares the compiled closed-loop costs). The
    AOT agent builds one graph per output map it uses (the planner's phenotype, the MHE's
    measurements with theta)."""
    import pbhno_gym.control.compiled as cm

    built = []

    def traced(model, output, wrt_theta, args):
        built.append((output, wrt_theta, args[0].shape[0]))
        gm = cm.aot_trace(model, output, wrt_theta, args)
        return lambda a: list(gm(*a))

    monkeypatch.setattr(cm, "_aot_build", traced)
    from pbhno_gym.control import MPCAgent, load_config
    from pbhno_gym.envs.core import PathwayCore
    from pbhno_gym.evaluation.episodes import physical_spec
    from pbhno_gym.utils.rng import seed_to_key

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    monkeypatch.setattr(CompiledModel, "_shared", {})  # keep these uncompiled wrappers to this test
    spec = physical_spec("pbhno/MAPK-Unknown-v0")  # actions in physical units, as PathwayCore takes
    small = dict(horizon=6, iterations=6, warm_iterations=3, dtype="float64")
    if backend == "aot":
        small["substeps"] = 1  # a quarter of the graph to trace (the inductor case keeps the spec's)
    est = dict(window=4, iterations=4, estimate_theta=estimate_theta)
    acts = {}
    for compile_ in (False, True):
        cfg = load_config(None, spec, compile=compile_, compile_backend=backend, estimation=est, **small)
        agent = MPCAgent.from_config(cfg, None, spec)
        assert agent.planner._jacobian_mode(_probe(agent)) == ("forward" if compile_ else "condensed")
        core = PathwayCore(spec, 2)
        obs = core.reset(keys=torch.tensor([seed_to_key(s) for s in (3, 4)], dtype=torch.int64))
        out = []
        for _ in range(5):
            a, _ = agent.predict(obs)
            out.append(torch.as_tensor(a, dtype=F64))
            obs = core.step(torch.as_tensor(a, dtype=torch.float32)).obs
        acts[compile_] = torch.stack(out)
    # float64 round-off through a few LM/GN iterations, amplified by ill-conditioned solves
    torch.testing.assert_close(acts[True], acts[False], rtol=1e-7, atol=1e-9)
    if backend == "aot":
        # the planner's phenotype and the MHE's measurements with theta, each at the buckets its
        # active sets met (2 envs: 2, and 1 once one problem has converged)
        assert {b[:2] for b in built} == {("measure", True), ("phenotype", False)}
        assert {b[2] for b in built} <= {1, 2} and len(built) == len(set(built))


def _probe(agent):
    return mapk_problems(agent.model, B=1, T=agent.cfg.horizon)


# ---- ahead-of-time step Jacobians (mpc.compile_backend = "aot") ----


def _aot_inputs(model, B, seed=11):
    prob = mapk_problems(model, B=B, T=T, seed=seed)
    u = _rand((B, 2), 6) * model.control_high
    act = torch.ones(B, dtype=torch.bool)
    act[1::2] = False  # inactive rows keep their state (MHE padding)
    return [prob.z0.x.contiguous(), prob.z0.t.contiguous(), u, prob.log_theta.contiguous(), act]


def test_aot_traced_graph_is_the_eager_step_jacobian(model):
    """The make_fx graph the AOT backend compiles (traced in graph_tracing: the compiled branches
    of the kinetics and parameter checks) gives the eager step Jacobian at the traced batch,
    inactive rows included; a graph traced eagerly (no graph_tracing) would hit the host sync
    of the finiteness check and fail to trace. (The phenotype map without theta goes through the
    same trace in the agent test below.)"""
    output, wrt_theta = "measure", True
    from pbhno_gym.control.compiled import aot_trace

    args = _aot_inputs(model, 3)
    gm = aot_trace(model, output, wrt_theta, args)
    ref = model.step_jacobian(*args, output, wrt_theta)
    got = gm(*args)
    for a, b in zip(ref, got, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
    # new values through the same graph (nothing data-dependent baked in)
    args2 = _aot_inputs(model, 3, seed=12)
    for a, b in zip(model.step_jacobian(*args2, output, wrt_theta), gm(*args2), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_aot_backend_needs_a_simulator_model_and_a_known_backend(model):
    class Tuned(SimulatorModel):  # any other model type may hold weights that change
        pass

    other = Tuned("pbhno/MAPK-v0", dtype=F64)
    with pytest.raises(ValueError, match="jacobian_backend='aot' needs a SimulatorModel"):
        CompiledModel(other, jacobian_backend="aot")
    with pytest.raises(ValueError, match="jacobian_backend must be"):
        CompiledModel(model, jacobian_backend="tvm")
    from pbhno_gym.control import load_config
    from pbhno_gym.control.config import ConfigError

    with pytest.raises(ConfigError, match="mpc.compile_backend"):
        load_config(None, "pbhno/MAPK-v0", compile_backend="tvm")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.export's own torch.jit calls
def test_aot_libraries_are_cached_by_sources_and_written_atomically(tmp_path, monkeypatch):
    """Plumbing with AOTInductor replaced by the traced graph (the real compile is the slow test
    below; one sub-step per control step keeps the traces short): a second model of equal value
    loads the cached library without tracing, another theta reuses it (log theta is an input),
    changed sources rebuild, a failed build leaves no file."""
    import dataclasses

    import pbhno_gym.control.compiled as cm
    from pbhno_gym.envs.spec import load_spec

    spec = dataclasses.replace(load_spec("pbhno/MAPK-Unknown-v0"), substeps=1)

    def planning_model(**kw):
        return SimulatorModel(spec, dtype=F64, state_floor=1e-6, world=True, **kw)

    model = planning_model()

    monkeypatch.setenv("PBHNO_AOT_CACHE", str(tmp_path))
    graphs: list[torch.fx.GraphModule] = []  # "libraries": the file holds an index into this list
    traces = []

    def fake_compile(gm, package_path):  # given what the patched export returns: the graph
        graphs.append(gm)
        with open(package_path, "w") as f:
            f.write(str(len(graphs) - 1))
        return package_path

    class Loaded:  # aoti_load_package(path).loader.run(list) -> list
        def __init__(self, path):
            gm = graphs[int(open(path).read())]
            self.loader = type("Loader", (), {"run": staticmethod(lambda a: list(gm(*a)))})

    monkeypatch.setattr(torch.export, "export", lambda gm, args, strict: gm)
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", fake_compile)
    monkeypatch.setattr(torch._inductor, "aoti_load_package", Loaded)
    real_trace = cm.aot_trace
    monkeypatch.setattr(cm, "aot_trace", lambda *a: traces.append(1) or real_trace(*a))

    args = _aot_inputs(model, 3)
    ref = model.step_jacobian(*args, "measure", True)
    for m in (model, planning_model()):
        got = CompiledModel(m, jacobian_backend="aot").step_jacobian(*args, "measure", True)
        for a, b in zip(ref, got, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
    assert len(traces) == 1 and len(list(tmp_path.glob("*.pt2"))) == 1
    shifted = planning_model(parameters={model.param_names[0]: 1.7})
    CompiledModel(shifted, jacobian_backend="aot").step_jacobian(*args, "measure", True)
    assert len(traces) == 1
    monkeypatch.setattr(cm, "_source_digest", lambda: "edited")
    CompiledModel(model, jacobian_backend="aot").step_jacobian(*args, "measure", True)
    assert len(traces) == 2 and len(list(tmp_path.glob("*.pt2"))) == 2

    def failing(gm, package_path):
        with open(package_path, "wb") as f:
            f.write(b"torn")
        raise RuntimeError("compiler crashed")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", failing)
    monkeypatch.setattr(cm, "_source_digest", lambda: "edited again")
    with pytest.raises(RuntimeError, match="compiler crashed"):
        CompiledModel(model, jacobian_backend="aot").step_jacobian(*args, "measure", True)
    assert len(list(tmp_path.glob("*.pt2"))) == 2 and not list(tmp_path.glob(".partial-*"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_aot_step_jacobian_compiled(model, tmp_path, monkeypatch):
    """The real AOTInductor libraries (about a minute each on 2 cores): batch 1, and 3 padded to
    the bucket of 4; equal to the eager step Jacobian in float64."""
    monkeypatch.setenv("PBHNO_AOT_CACHE", str(tmp_path))
    comp = CompiledModel(model, jacobian_backend="aot")
    for B in (1, 3):
        _compare(model, comp, B)
    assert len(list(tmp_path.glob("*.pt2"))) == 2
