"""Errors raised by cmrlab.

Every error a user can trigger by giving cmrlab bad input is a :class:`CmrlabError`, so a notebook
or script can catch them all with one ``except`` clause. Errors about files name the file and say
what is wrong with it, in plain words.
"""
from __future__ import annotations

import os

__all__ = ["ArgumentError", "CmrlabError", "ConfigError", "FileFormatError"]


class CmrlabError(Exception):
    """Base class of every error cmrlab raises on purpose."""


class ArgumentError(CmrlabError, ValueError):
    """A function argument has a value that makes no sense (the message names the argument).

    Example: ``ArgumentError("T1 must be positive, got -3.0")``. Being a ``ValueError`` too, it is
    caught by code that expects the standard exception.
    """


class ConfigError(CmrlabError, ValueError):
    """A setting (profile, device, data root, option) is not valid."""


class FileFormatError(CmrlabError, OSError):
    """A file is missing, unreadable, truncated or not in the expected format.

    ``path`` is the offending file and ``problem`` says what is wrong with it; the message reads
    ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __str__(self) -> str:  # OSError's own __str__ would print the errno form
        return f"{self.path}: {self.problem}"

    def __reduce__(self):  # keep the error picklable (multiprocessing, pytest-xdist)
        return (type(self), (self.path, self.problem))
