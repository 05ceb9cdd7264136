"""The kit's version, recorded in every bundle manifest and verdict."""

__version__ = "0.1.0"
