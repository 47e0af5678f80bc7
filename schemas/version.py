"""The ticktape version, recorded in every Parquet file's metadata (single source)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
