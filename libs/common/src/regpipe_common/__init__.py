"""Shared library of the regpipe services."""

__version__ = "0.1.0"
