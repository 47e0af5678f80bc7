"""Package version (defined once in :mod:`schemas.version`)."""

from schemas.version import __version__

__all__ = ["__version__"]
