"""Exceptions that the services turn into a one-line error and a non-zero exit."""


class RegpipeError(Exception):
    """A user-facing failure: bad input, bad spec, bad model file. Never a bug."""


class SpecError(RegpipeError):
    """The dataset spec file is missing or invalid."""


class DataError(RegpipeError):
    """The input data does not match the spec or cannot be read."""


class BundleError(RegpipeError):
    """A model bundle is missing, incomplete, tampered with or incompatible."""


class BundleNotFoundError(BundleError):
    """The bundle's files are not there (yet): a later look may find them."""
