"""The parameter-discovery fitters PB-HNO is compared with, one module per method family.

* :mod:`.mle`: true-model maximum likelihood / MAP (``mle``, ``map``);
* :mod:`.sbinn`: systems-biology-informed neural networks (``sbinn``);
* :mod:`.pinn`: vanilla physics-informed networks (``pinn_ode``, ``pinn_pde``), on :mod:`.sbinn`'s engine;
* :mod:`.fno_plain`: an amortised FNO without physics (``fno_plain``);
* :mod:`.nets`: the small batched networks they share.

Each module declares its :class:`~pbhno_gym.discovery.method.Method` objects in ``METHODS``;
:data:`METHODS` collects them, and :mod:`pbhno_gym.discovery.registry` registers them on first use.
A new method is a module here with a ``METHODS`` tuple, imported below.
"""

from ..method import Method
from . import fno_plain, mle, pinn, sbinn

__all__ = ["METHODS"]

#: every method of this package, in the registry's order
METHODS: tuple[Method, ...] = (*mle.METHODS, *sbinn.METHODS, *pinn.METHODS, *fno_plain.METHODS)
