"""One error tree for the whole package.

Every error a user can cause derives from :class:`AutoMLError`, so a notebook magic or the
CLI can catch one type and show a clean message instead of a traceback.
"""


class AutoMLError(Exception):
    """Base of every error raised by automl_nb on purpose."""


class SpecError(AutoMLError, ValueError):
    """A job, hyperparameter or search space is invalid (names the key, value and what is allowed)."""


class DataError(AutoMLError, ValueError):
    """Input data is malformed or missing (names the file and line or the image URL)."""


class TrialError(AutoMLError):
    """A trial could not run (e.g. pretrained weights unavailable, non-finite loss)."""


class RunFolderError(AutoMLError):
    """A file of a run or trial folder is truncated, corrupt or refused (names the file)."""
