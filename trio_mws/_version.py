"""The package's version, in one place: ``trio_mws.__version__``, the CLI's ``--version``, the
default User-Agent and the distribution's metadata (setuptools reads it statically)."""

__version__ = "0.1.0"
