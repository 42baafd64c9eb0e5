"""Named, positive, batched mechanistic parameters theta with log-normal priors.

Parameters travel in log space as a tensor ``log_theta`` of shape (P,) (shared by the batch) or
(B, P) (one row per environment). The prior is log-normal: ``log theta ~ N(log nominal, 0.5^2)``
per parameter (Appendix C: mu = nominal, Sigma = diag(0.5^2)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ParamSpec", "ParamSet", "ControlSpec"]


@dataclass(frozen=True)
class ParamSpec:
    """One mechanistic parameter: name, nominal value, unit, meaning, prior width (log space)."""

    name: str
    nominal: float
    unit: str
    description: str
    prior_sigma: float = 0.5

    def __post_init__(self) -> None:
        if not (self.nominal > 0 and math.isfinite(self.nominal)):
            raise ValueError(
                f"parameter {self.name!r}: nominal must be positive and finite, got {self.nominal!r}"
            )
        if not self.prior_sigma > 0:
            raise ValueError(f"parameter {self.name!r}: prior_sigma must be > 0")


@dataclass(frozen=True)
class ControlSpec:
    """One control input channel with its physical unit and admissible interval."""

    name: str
    unit: str
    low: float
    high: float
    description: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(
                f"control {self.name!r}: bounds must be finite with low <= high, "
                f"got [{self.low}, {self.high}]"
            )


class ParamSet:
    """The ordered parameter vector of one pathway."""

    def __init__(self, specs: Sequence[ParamSpec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.specs: tuple[ParamSpec, ...] = tuple(specs)
        self.names: tuple[str, ...] = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def __getitem__(self, name: str) -> ParamSpec:
        return self.specs[self.index[name]]

    def nominal(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor([s.nominal for s in self.specs], dtype=dtype, device=device)

    def log_nominal(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.log(self.nominal(torch.float64)).to(dtype=dtype, device=device)

    def prior_sigma(self, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor([s.prior_sigma for s in self.specs], dtype=dtype, device=device)

    def log_theta(
        self, values: Mapping[str, float] | None = None, dtype=torch.float32, device=None
    ) -> Tensor:
        """(P,) log parameters: nominal values overridden by ``values`` (natural units).

        Raises ValueError naming the parameter if a name is unknown or a value is not positive.
        """
        out = self.log_nominal(torch.float64)
        for k, v in (values or {}).items():
            if k not in self.index:
                raise ValueError(f"unknown parameter {k!r}; known: {', '.join(self.names)}")
            v = float(v)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"parameter {k!r} must be positive and finite, got {v!r}")
            out[self.index[k]] = math.log(v)
        return out.to(dtype=dtype, device=device)

    def validate(self, log_theta: Tensor) -> None:
        """Check shape (P,) or (B, P) and finiteness; the error names the offending parameter."""
        if log_theta.ndim not in (1, 2) or log_theta.shape[-1] != len(self):
            raise ValueError(
                f"log_theta must have shape (P,) or (B, P) with P={len(self)}, got {tuple(log_theta.shape)}"
            )
        bad = ~torch.isfinite(log_theta)
        if bad.any():
            j = int(bad.reshape(-1, len(self)).any(0).nonzero()[0])
            raise ValueError(
                f"parameter {self.names[j]!r} is not finite (log value "
                f"{log_theta.reshape(-1, len(self))[:, j].tolist()[:4]})"
            )

    def unpack(self, log_theta: Tensor) -> dict[str, Tensor]:
        """Natural-scale parameters as a dict of (B, 1) tensors (or (1, 1) if shared)."""
        th = torch.exp(log_theta.reshape(-1, len(self)))
        return {n: th[:, i : i + 1] for i, n in enumerate(self.names)}

    def sample_prior(
        self, n: int, generator: torch.Generator | None = None, dtype=torch.float32, device=None
    ) -> Tensor:
        """(n, P) log parameters drawn from the log-normal prior."""
        z = torch.randn(n, len(self), generator=generator, dtype=torch.float64)
        out = self.log_nominal(torch.float64) + z * self.prior_sigma(torch.float64)
        return out.to(dtype=dtype, device=device)

    def log_prior(self, log_theta: Tensor) -> Tensor:
        """Gaussian log-density of log theta (up to a constant), summed over parameters."""
        mu = self.log_nominal(log_theta.dtype, log_theta.device)
        sig = self.prior_sigma(log_theta.dtype, log_theta.device)
        return -0.5 * (((log_theta - mu) / sig) ** 2).sum(-1)

    def table(self) -> list[dict]:
        return [
            dict(
                name=s.name,
                nominal=s.nominal,
                unit=s.unit,
                description=s.description,
                prior=f"logN(log {s.nominal:g}, {s.prior_sigma:g}^2)",
            )
            for s in self.specs
        ]
