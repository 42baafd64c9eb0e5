"""Simulator throughput: control steps per second vs batch size, per pathway and device.

Each configuration is timed after a warm-up, synchronising CUDA, over a fixed number of control
steps with the production substep count. The "Wnt reference" configuration matches the issue's
reference stepper (64 x 64 grid, 16 cells, 4 species, 10 substeps per control step), and the
report gives the memory-traffic bound of one field read and write per substep for context.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import torch

from ..physics import Simulator, get_pathway, lattice, no_field, two_cell, wnt_tissue

CONFIGS = {
    "wnt": lambda: (get_pathway("wnt"), wnt_tissue(), 10.0, 10),
    "notch": lambda: (get_pathway("notch"), two_cell(), 15.0, 10),
    "notch_lattice": lambda: (get_pathway("notch"), lattice(rows=4, cols=4), 15.0, 10),
    "mapk": lambda: (get_pathway("mapk"), no_field(), 1.0, 4),
}


@dataclass
class Result:
    pathway: str
    device: str
    batch: int
    mode: str
    steps_per_s: float
    ms_per_step: float
    bound_steps_per_s: float | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bandwidth_bound(sim: Simulator, batch: int, substeps: int, gbytes_per_s: float) -> float | None:
    """Control steps/s if each substep only read and wrote the field once."""
    if sim.grid is None:
        return None
    bytes_per_step = 2 * substeps * sim.grid.ny * sim.grid.nx * torch.finfo(sim.dtype).bits // 8
    return gbytes_per_s * 1e9 / bytes_per_step


def time_config(
    name: str,
    batch: int,
    device: str = "cpu",
    mode: str = "eager",
    steps: int = 10,
    warmup: int = 2,
    gbytes_per_s: float | None = None,
) -> Result:
    """Time ``steps`` control steps of pathway ``name`` at ``batch`` envs."""
    pw, lay, dt, k = CONFIGS[name]()
    dev = torch.device(device)
    sim = Simulator(pw, lay, dt, substeps=k, max_stiffness=1e9, dtype=torch.float32, device=dev)
    lt = sim.params.sample_prior(batch, torch.Generator().manual_seed(0)).to(dev)
    st = sim.initial_state(lt)
    u = (0.5 * (sim.control_low + sim.control_high)).expand(batch, -1).contiguous()
    step = sim.step
    if mode == "compile":
        step = torch.compile(sim.step, dynamic=False)
    with torch.no_grad():
        for _ in range(warmup):
            st = step(st, u, lt)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            st = step(st, u, lt)
        _sync(dev)
        wall = time.perf_counter() - t0
    sps = batch * steps / wall
    bound = bandwidth_bound(sim, batch, k, gbytes_per_s) if gbytes_per_s else None
    return Result(name, str(dev), batch, mode, sps, 1e3 * wall / steps, bound)


def machine_description(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def to_markdown(results: list[Result]) -> str:
    lines = [
        "| pathway | device | mode | batch | control steps/s | ms per step | field-traffic bound (steps/s) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        bound = "" if r.bound_steps_per_s is None else f"{r.bound_steps_per_s:,.0f}"
        lines.append(
            f"| {r.pathway} | {r.device} | {r.mode} | {r.batch} | {r.steps_per_s:,.0f} | "
            f"{r.ms_per_step:.2f} | {bound} |"
        )
    return "\n".join(lines)
