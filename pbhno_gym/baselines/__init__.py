"""Baseline controllers for the comparison: trivial references, stable-baselines3 RL agents,
and a classical nonlinear MPC (CasADi/IPOPT) on the true ODE model.

Submodules are imported on demand (SB3 and CasADi are optional extras).
"""
