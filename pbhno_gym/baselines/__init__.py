"""Baselines, one folder for both comparisons (submodules import on demand; SB3, CasADi,
pyPESTO and emcee are optional extras).

* Control: trivial references (:mod:`.reference`), stable-baselines3 RL agents
  (:mod:`.sb3_agent`) and a classical nonlinear MPC on the true ODE model (:mod:`.casadi_nmpc`).
* Parameter discovery, on the episode-dataset interface and registered in
  :mod:`pbhno_gym.discovery.registry`: true-model MLE/MAP (:mod:`.mle`), SBINN (:mod:`.sbinn`),
  PINN-ODE / PINN-PDE (:mod:`.pinn`) and a plain FNO without physics (:mod:`.fno_plain`).
"""
