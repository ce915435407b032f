"""crimemap: crime where Londoners live.

The package keeps a pure core (readers, the spatial join, the store, rates)
that never imports Flask; the web layer lives in :mod:`crimemap.web`.
"""

__version__ = "0.1.0"
