"""Named, positive, batched mechanistic parameters theta with log-normal priors.

Parameters travel in log space as a tensor ``log_theta`` of shape (P,) (shared by the batch) or
(B, P) (one row per environment). The prior is log-normal: ``log theta ~ N(log nominal, 0.5^2)``
per parameter (Appendix C: mu = nominal, Sigma = diag(0.5^2)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .tracing import is_tracing

__all__ = ["ParamSpec", "ParamSet", "ControlSpec", "Parameters"]


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
        """Check shape (P,) or (B, P) and finiteness (eager only: under torch.compile the data-dependent
        check would break the graph); the error names the offending parameter."""
        if log_theta.ndim not in (1, 2) or log_theta.shape[-1] != len(self):
            raise ValueError(
                f"log_theta must have shape (P,) or (B, P) with P={len(self)}, got {tuple(log_theta.shape)}"
            )
        if is_tracing():
            return
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
        return dict(zip(self.names, th.split(1, dim=1), strict=True))

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


@dataclass(frozen=True)
class Parameters:
    """Mechanistic parameters as they travel: names, log-values, which are free, and the prior.

    One object instead of loose tensors (``log_theta``, ``prior_mean``, ...): an env's truth, a
    dataset's generator, a fit's estimate, a model's current estimate and the MPC's members are
    all ``Parameters``. ``log_values`` is (P,) (one parameter vector) or (B, P) (one per row); the
    prior is log-normal, ``log theta ~ N(prior_mean, prior_sd^2)`` per entry. Tensor views
    (``log_values``, ``values``) feed the batched simulators; dict views (``as_dict``) feed
    tables and files.
    """

    names: tuple[str, ...]
    log_values: Tensor
    prior_mean: Tensor
    prior_sd: Tensor
    free: Tensor = field(default=None)  # type: ignore[assignment]  # (P,) bool; default: all free

    def __post_init__(self) -> None:
        P = len(self.names)
        if self.free is None:
            object.__setattr__(self, "free", torch.ones(P, dtype=torch.bool, device=self.log_values.device))
        for name, t, shapes in (
            ("log_values", self.log_values, ((P,), None)),
            ("prior_mean", self.prior_mean, ((P,),)),
            ("prior_sd", self.prior_sd, ((P,),)),
            ("free", self.free, ((P,),)),
        ):
            ok = tuple(t.shape) in [s for s in shapes if s] or (
                None in shapes and t.ndim == 2 and t.shape[1] == P
            )
            if not ok:
                raise ValueError(
                    f"Parameters.{name} must have shape {'(P,) or (B, P)' if None in shapes else '(P,)'} "
                    f"with P={P} ({', '.join(self.names)}), got {tuple(t.shape)}"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_set(
        cls,
        pset: ParamSet,
        nominal: Mapping[str, float] | None = None,
        values: Mapping[str, float] | None = None,
        free: Sequence[str] | None = None,
        dtype=torch.float32,
        device=None,
    ) -> Parameters:
        """A pathway's parameters: prior mean at the (overridden) nominal values, log-values at
        the prior mean overridden by ``values`` (natural units), ``free`` names (None: all)."""
        mean = pset.log_theta(nominal, dtype, device)
        log_values = mean.clone()
        for k, v in (values or {}).items():
            log_values[pset.index[k] if k in pset.index else _unknown(k, pset.names)] = _log(k, v)
        return cls(
            pset.names, log_values, mean, pset.prior_sigma(dtype, device), _mask(pset.names, free, device)
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], dtype=torch.float32, device=None) -> Parameters:
        """Inverse of :meth:`to_dict` (e.g. a dataset's or a checkpoint's record)."""
        names = tuple(d["names"])

        def t(k):
            return torch.as_tensor(d[k], dtype=torch.float64).to(dtype=dtype, device=device)

        free = d.get("free")
        mask = _mask(
            names, None if free is None else [n for n, f in zip(names, free, strict=True) if f], device
        )
        return cls(names, t("log_values"), t("prior_mean"), t("prior_sd"), mask)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: names, log-values, prior mean and sd, free flags."""
        return {
            "names": list(self.names),
            "log_values": self.log_values.detach().double().cpu().tolist(),
            "prior_mean": self.prior_mean.detach().double().cpu().tolist(),
            "prior_sd": self.prior_sd.detach().double().cpu().tolist(),
            "free": self.free.cpu().tolist(),
        }

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.names)

    @property
    def batched(self) -> bool:
        return self.log_values.ndim == 2

    @property
    def values(self) -> Tensor:
        """Natural-scale values, same shape as ``log_values``."""
        return torch.exp(self.log_values)

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(n for n, f in zip(self.names, self.free.tolist(), strict=True) if f)

    def as_dict(self, row: int | None = None) -> dict[str, float]:
        """{name: natural value}; batched parameters need ``row``."""
        v = self.values.detach()
        if v.ndim == 2:
            if row is None:
                raise ValueError(f"Parameters.as_dict: batched ({v.shape[0]} rows) needs a row")
            v = v[row]
        return {n: float(x) for n, x in zip(self.names, v.double().cpu().tolist(), strict=True)}

    def __getitem__(self, name: str) -> Tensor:
        """Log-value(s) of one parameter: a scalar tensor, or (B,) for batched parameters."""
        if name not in self.names:
            _unknown(name, self.names)
        return self.log_values[..., self.names.index(name)]

    # ------------------------------------------------------------------ new objects
    def replace(self, log_values: Tensor) -> Parameters:
        """The same names, prior and free mask with other log-values ((P,) or (B, P))."""
        return Parameters(self.names, log_values, self.prior_mean, self.prior_sd, self.free)

    def prior(self) -> Parameters:
        """These parameters at their prior mean (the no-learning baseline)."""
        return self.replace(self.prior_mean.clone())

    def updated(self, values: Mapping[str, float]) -> Parameters:
        """A copy with some entries set to natural values (names checked)."""
        lv = self.log_values.detach().clone()
        for k, v in values.items():
            lv[..., self.names.index(k) if k in self.names else _unknown(k, self.names)] = _log(k, v)
        return self.replace(lv)

    def expand(self, batch: int) -> Parameters:
        """(batch, P) rows (a shared vector repeated; batched parameters must have that many rows)."""
        lv = self.log_values
        if lv.ndim == 2:
            if lv.shape[0] != batch:
                raise ValueError(f"Parameters.expand: have {lv.shape[0]} rows, asked for {batch}")
            return self
        return self.replace(lv.expand(batch, -1).clone())

    def index(self, rows: Tensor) -> Parameters:
        """Rows ``rows`` as (len(rows), P) parameters (a shared vector is repeated)."""
        if self.batched:
            return self.replace(self.log_values[rows])
        return self.replace(self.log_values.expand(rows.shape[0], -1).clone())

    def to(self, device=None, dtype=None) -> Parameters:
        def mv(t, floating=True):
            return t.to(device=device, dtype=dtype if floating else None)

        return Parameters(
            self.names, mv(self.log_values), mv(self.prior_mean), mv(self.prior_sd), mv(self.free, False)
        )

    def sample_around(
        self, n: int, generator: torch.Generator | None = None, scale: float = 1.0
    ) -> Parameters:
        """(n, P) draws ``log_values + scale * prior_sd * z`` (free entries only; a shared vector)."""
        if self.batched:
            raise ValueError("Parameters.sample_around needs one parameter vector, not a batch")
        z = torch.randn(n, len(self), generator=generator, dtype=torch.float64).to(self.log_values)
        return self.replace(self.log_values + scale * self.prior_sd * z * self.free.to(z.dtype))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Parameters:
        """(n, P) draws from the prior (free entries; fixed ones stay at the prior mean)."""
        return self.prior().sample_around(n, generator)

    def log_prior(self) -> Tensor:
        """Gaussian log-density of the log-values under the prior (up to a constant): (,) or (B,)."""
        return -0.5 * (((self.log_values - self.prior_mean) / self.prior_sd) ** 2).sum(-1)


def _unknown(name: str, names: Sequence[str]) -> int:
    raise ValueError(f"unknown parameter {name!r}; known: {', '.join(names)}")


def _log(name: str, v: float) -> float:
    v = float(v)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"parameter {name!r} must be positive and finite, got {v!r}")
    return math.log(v)


def _mask(names: Sequence[str], free: Sequence[str] | None, device) -> Tensor:
    if free is None:
        return torch.ones(len(names), dtype=torch.bool, device=device)
    unknown = [n for n in free if n not in names]
    if unknown:
        raise ValueError(f"unknown free parameter(s) {unknown}; known: {', '.join(names)}")
    return torch.tensor([n in set(free) for n in names], dtype=torch.bool, device=device)
