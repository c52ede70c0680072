"""tos-tracker: watch AI providers' terms and policies and say what changed."""

__version__ = "0.1.0"

__all__ = ["__version__"]
