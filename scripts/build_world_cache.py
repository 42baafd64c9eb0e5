#!/usr/bin/env python
"""Screen the conditioned worlds of registered tasks and ship the results (envs/world_cache.json).

A task with ``world_untreated`` (``pbhno/Wnt-Unknown-v1``) draws world k as the first of its
candidate draws that passes the untreated pattern and the reachability certificate
(:mod:`pbhno_gym.envs.worlds`). Screening costs seconds per world on CPU, so the accepted
candidate of the first world seeds is shipped, keyed by a hash of the spec fields it depends on;
a spec with other physics (another grid, other parameters) is screened afresh when made. The
table is a cache: ``tests/envs/test_worlds.py`` recomputes entries of it.

    python scripts/build_world_cache.py --tasks pbhno/Wnt-Unknown-v1 --seeds 0-31 --grids 64 32
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from pbhno_gym.envs import load_spec
from pbhno_gym.envs.worlds import WORLD_CACHE, fingerprint_hash, screen_worlds, world_prior


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["pbhno/Wnt-Unknown-v1"])
    p.add_argument("--seeds", default="0-31", help="world seeds, '0-31' or '0,3'")
    p.add_argument("--grids", nargs="+", type=int, default=[0], help="grid sizes n (n x n); 0: the spec's")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    table = json.loads(WORLD_CACHE.read_text()) if WORLD_CACHE.is_file() else {}
    for task in a.tasks:
        for n in a.grids:
            spec = load_spec(task, {"layout": {"ny": n, "nx": n}} if n else {})
            t0 = time.time()
            found = screen_worlds(spec, world_prior(spec, dtype=torch.float64), parse_seeds(a.seeds))
            h = fingerprint_hash(spec)
            grid = [spec.layout.ny, spec.layout.nx]
            entry = table.setdefault(h, {"task": task, "grid": grid, "accepted": {}})
            entry["accepted"].update({str(k): v for k, v in sorted(found.items())})
            entry["accepted"] = dict(sorted(entry["accepted"].items(), key=lambda kv: int(kv[0])))
            print(f"{task} {grid[0]}x{grid[1]} [{h}]: {len(found)} worlds in {time.time() - t0:.0f} s")
    fd, tmp = tempfile.mkstemp(dir=WORLD_CACHE.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, WORLD_CACHE)  # atomic: an interrupted run leaves the old table
    print("wrote", WORLD_CACHE)


if __name__ == "__main__":
    main()
