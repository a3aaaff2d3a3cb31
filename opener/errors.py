"""The one error type for user mistakes: what is wrong, where, and what to do.

It lives at the bottom of the package (opener is imported by everything above it) so that algo, metrics and the
orchestrator raise the same type, and the CLI turns it into a clean message and a non-zero exit, never a traceback.
Messages must not contain SMILES, compound ids or values of another partner (DESIGN.md section 7, invariant 5).
"""

from __future__ import annotations


class FedchemError(Exception):
    """A problem the user can fix: bad input, inconsistent configs, a run that cannot go on.

    what:  what is wrong, in one sentence.
    where: the file, row, key or task concerned (may be empty).
    fix:   what to do about it (may be empty).
    """

    exit_code = 2

    def __init__(self, what: str, where: str = "", fix: str = ""):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.message())

    def message(self) -> str:
        parts = [f"error: {self.what}"]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  what to do: {self.fix}")
        return "\n".join(parts)


class ConfigError(FedchemError):
    """A config file is missing, malformed, or disagrees with another config."""


class DataError(FedchemError):
    """A partner's raw or prepared data cannot be used as it is."""


class PrivacyError(FedchemError):
    """A compute plan, output or report would break a privacy invariant (DESIGN.md section 7)."""


class ProtocolError(FedchemError):
    """The secure-aggregation protocol cannot go on (too few survivors, tampered or refused shares)."""
