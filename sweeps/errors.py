"""The error a sweep that cannot run as asked ends in, shared by the modules that run one."""

from __future__ import annotations


class SweepError(RuntimeError):
    """The sweep cannot run as asked; the message names the option at fault and what would be right.

    `option` names the command-line option when one value is at fault (the CLI reports it as such)."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option
