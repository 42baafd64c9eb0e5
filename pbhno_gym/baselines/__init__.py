"""Baselines for parameter discovery, all on the episode-dataset interface and registered in
:mod:`pbhno_gym.discovery.registry`: true-model MLE/MAP (:mod:`.mle`), SBINN (:mod:`.sbinn`),
PINN-ODE / PINN-PDE (:mod:`.pinn`) and a plain FNO without physics (:mod:`.fno_plain`)."""
