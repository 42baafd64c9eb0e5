"""Truncated power series with dual-number (first-order sensitivity) coefficients, modulo a prime.

The engine of the probabilistic observability test (Sedoglavic, "A probabilistic algorithm to
test local algebraic observability in polynomial time", J. Symb. Comput. 2002): instead of
growing symbolic Lie derivatives, specialise the unknowns to a random point, compute the Taylor
coefficients of the outputs ``y(t) = sum_k y_k t^k`` (``y_k = L_f^k h / k!``) and their gradients
with respect to the unknowns exactly, in the field Z/PZ. The observability matrix is the
gradient of ``(y_0, ..., y_K)``; its rank over Z/PZ equals the generic rank over Q except with
probability ~ (degree / P), negligible for P = 2^31 - 1.

A :class:`Series` holds an int64 array (K+1, 1+n): row k is the k-th Taylor coefficient as a
dual number ``value + sum_j grad_j eps_j`` (``eps_i eps_j = 0``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["PRIME", "Series", "inv_mod", "to_mod", "rank_mod", "nullspace_mod", "rational_reconstruct"]

PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64


def inv_mod(a: int, p: int = PRIME) -> int:
    a = int(a) % p
    if a == 0:
        raise ZeroDivisionError(
            "division by zero modulo p (an unlucky random point: retry with another seed)"
        )
    return pow(a, p - 2, p)


def to_mod(x, p: int = PRIME) -> int:
    """A rational number (int, Fraction, float or SymPy Rational) as a residue mod p."""
    if hasattr(x, "p") and hasattr(x, "q"):  # sympy Rational / Integer
        f = Fraction(int(x.p), int(x.q))
    elif isinstance(x, float):
        f = Fraction(x).limit_denominator(10**9)
    else:
        f = Fraction(x)
    return (f.numerator % p) * inv_mod(f.denominator, p) % p


class Series:
    """Truncated power series (order K) over dual numbers mod ``PRIME`` (see module docstring)."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    @property
    def K(self) -> int:
        return self.a.shape[0] - 1

    @classmethod
    def constant(cls, c: int, K: int, n: int) -> Series:
        a = np.zeros((K + 1, 1 + n), dtype=np.int64)
        a[0, 0] = c % PRIME
        return cls(a)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, o: Series) -> Series:
        return Series((self.a + o.a) % PRIME)

    def __sub__(self, o: Series) -> Series:
        return Series((self.a - o.a) % PRIME)

    def __neg__(self) -> Series:
        return Series((-self.a) % PRIME)

    def __mul__(self, o: Series) -> Series:
        a, b = self.a, o.a
        K = a.shape[0] - 1
        out = np.zeros_like(a)
        for i in range(K + 1):
            ai, m = a[i], K + 1 - i
            if not ai.any():
                continue
            # (ai0 + ai_g eps)(bj0 + bj_g eps) = ai0 bj0 + (ai0 bj_g + bj0 ai_g) eps
            prod = np.empty((m, a.shape[1]), dtype=np.int64)
            prod[:, 0] = (ai[0] * b[:m, 0]) % PRIME
            prod[:, 1:] = ((ai[0] * b[:m, 1:]) % PRIME + (b[:m, 0:1] * ai[None, 1:]) % PRIME) % PRIME
            out[i:] = (out[i:] + prod) % PRIME
        return Series(out)

    def inverse(self) -> Series:
        """1 / self (needs a non-zero constant term)."""
        b = self.a
        K, n1 = b.shape[0] - 1, b.shape[1]
        b0 = int(b[0, 0])
        inv0 = inv_mod(b0)
        c = np.zeros_like(b)
        # dual inverse of b_0: 1/b0 - (g / b0^2) eps
        c[0, 0] = inv0
        c[0, 1:] = (-(b[0, 1:] * inv0) % PRIME * inv0) % PRIME
        for k in range(1, K + 1):
            acc = np.zeros(n1, dtype=np.int64)
            for j in range(1, k + 1):
                acc = (acc + _dmul(b[j], c[k - j])) % PRIME
            c[k] = _dmul((-acc) % PRIME, c[0])
        return Series(c)

    def __truediv__(self, o: Series) -> Series:
        return self * o.inverse()

    def __pow__(self, n: int) -> Series:
        if not isinstance(n, int):
            raise TypeError(f"Series ** {n!r}: only integer powers are supported")
        if n < 0:
            return self.inverse() ** (-n)
        out = Series.constant(1, self.K, self.a.shape[1] - 1)
        base, e = self, n
        while e:
            if e & 1:
                out = out * base
            e >>= 1
            if e:
                base = base * base
        return out

    def integrate_coefficient(self, k: int) -> np.ndarray:
        """Coefficient k of f, divided by k+1: the (k+1)-th coefficient of the integral."""
        return (self.a[k] * inv_mod(k + 1)) % PRIME


def _dmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Product of two dual numbers (1+n,) mod PRIME."""
    out = np.empty_like(x)
    out[0] = (x[0] * y[0]) % PRIME
    out[1:] = ((x[0] * y[1:]) % PRIME + (y[0] * x[1:]) % PRIME) % PRIME
    return out


def _echelon(M: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form mod PRIME and the pivot columns."""
    A = M.copy() % PRIME
    rows, cols = A.shape
    piv, r = [], 0
    for c in range(cols):
        if r >= rows:
            break
        nz = np.nonzero(A[r:, c])[0]
        if len(nz) == 0:
            continue
        k = r + int(nz[0])
        A[[r, k]] = A[[k, r]]
        A[r] = (A[r] * inv_mod(int(A[r, c]))) % PRIME
        f = A[:, c].copy()
        f[r] = 0
        A = (A - (f[:, None] * A[r][None, :]) % PRIME) % PRIME
        piv.append(c)
        r += 1
    return A, piv


def rank_mod(M: np.ndarray) -> int:
    return len(_echelon(M)[1])


def nullspace_mod(M: np.ndarray) -> np.ndarray:
    """(k, cols) basis of the right null space mod PRIME (rows), from the reduced echelon form."""
    A, piv = _echelon(M)
    cols = M.shape[1]
    free = [c for c in range(cols) if c not in piv]
    basis = []
    for f in free:
        v = np.zeros(cols, dtype=np.int64)
        v[f] = 1
        for i, pc in enumerate(piv):
            v[pc] = (-A[i, f]) % PRIME
        basis.append(v)
    return np.array(basis, dtype=np.int64).reshape(len(basis), cols)


def rational_reconstruct(a: int, p: int = PRIME) -> Fraction | None:
    """The rational n/d with |n|, d <= sqrt(p/2) congruent to ``a`` mod p (None if none)."""
    a %= p
    bound = int((p // 2) ** 0.5)
    r0, r1, s0, s1 = p, a, 0, 1
    while r1 > bound:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        s0, s1 = s1, s0 - q * s1
    if s1 == 0 or abs(s1) > bound:
        return None
    return Fraction(r1, s1) if s1 > 0 else Fraction(-r1, -s1)
