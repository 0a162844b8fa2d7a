"""The sandbox every submission's kernel runs in during autograde (not yet enforced)."""
from __future__ import annotations


def configure_sandbox(c) -> None:
    """Set nbgrader's kernel settings on the config object ``c`` (no sandbox yet)."""
