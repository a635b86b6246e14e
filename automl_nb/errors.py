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


class DataCheckError(DataError):
    """The data check before a run found problems; nothing was started.

    Args:
        problems: every problem found, one line each, ``"file:line: what; the value"``.

    Attributes:
        problems: all of them (the message shows the first :attr:`SHOWN` and the total).
    """

    SHOWN = 20

    def __init__(self, problems) -> None:
        self.problems = tuple(str(p) for p in problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """The message's lines: a headline, the first :attr:`SHOWN` problems, and how many more."""
        total = len(self.problems)
        lines = [f"the data check found {total} problem{'s' if total != 1 else ''}; nothing was started:"]
        lines += self.problems[: self.SHOWN]
        if total > self.SHOWN:
            lines.append(f"... and {total - self.SHOWN} more ({total} problems)")
        return lines

    def __reduce__(self):  # pickles (e.g. from a Dask worker) with its problems, not the message
        return type(self), (self.problems,)
