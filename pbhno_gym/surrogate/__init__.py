"""PB-HNO: the physics-biology hybrid neural operator surrogate (FNO field block + neural ODE cells)."""
