"""The base of the trainer's domain errors.

Each module raises its own (`ModelError`, `DataError`, `TrainingError`, `PipelineError`, `VersionError`,
`OptionError`); all derive from `TrainerError`, whose message says what to do, so a front end (`lmm-mcp`,
`python -m trainer`) catches the one base and prints the message without a traceback.
"""

from __future__ import annotations


class TrainerError(Exception):
    """Training cannot go on as asked; the message says why and what to do."""
