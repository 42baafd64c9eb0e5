"""pbhno-gym: learned-physics control of cell-signalling dynamics.

Importing the package registers the Gymnasium environments (``pbhno/Wnt-v0`` ...).
"""

__version__ = "0.1.0"
