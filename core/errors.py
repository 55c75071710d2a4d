"""Errors the workbench expects. Each message says what is wrong and how to fix it."""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of expected problems; the CLI exits with `exit_code` and no traceback."""

    exit_code = 2


class ConfigError(WorkbenchError):
    """An environment setting has a value the workbench cannot use."""


class DataUnavailableError(WorkbenchError):
    """The raw data cannot be found, copied or downloaded."""


class ChecksumError(WorkbenchError):
    """A raw file does not match its published SHA-256 sum."""


class NotPreparedError(WorkbenchError):
    """A step needs prepared data that does not exist yet."""


class TrackingError(WorkbenchError):
    """The MLflow store or registry is missing something a step needs."""


class TrainingError(WorkbenchError):
    """Training cannot run with the given choices (unknown model, bad budget, failed step)."""


class TrainingBusyError(WorkbenchError):
    """Another training holds the training lock."""


class PreparationError(DataUnavailableError):
    """The data cannot be prepared as the definition says (e.g. a class too rare to split)."""
