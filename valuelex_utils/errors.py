"""User-facing errors.

A researcher who mistypes a path or a key should get one line that names the problem and exit code 2, with nothing in
the run dir touched. Every module raises `UserError` for bad input; the CLI turns it into that line.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, params, CSV, model id): reported as one line, exit code 2."""

    exit_code = 2
