"""Stop one trial of a running sweep, and reach the sweep's Dask client, from the notebook.

``Run`` offers ``cancel()`` for the whole job. Stopping a single trial goes through the
driver's early-termination hook: :class:`UserStops` wraps the sweep's policy (or its absence)
and stops the trials the user asked to stop at their next evaluation, exactly as a policy
would; the trial ends ``Canceled`` with "stopped by the user" in its notes, keeps its best
checkpoint, and ``resume()`` leaves it alone. A ``Run.stop_trial`` method, where the sweep
layer has one, is used instead.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Mapping, Sequence

from automl_nb.errors import AutoMLError

STOP_NOTE = "stopped by the user"


class UserStops:
    """An early-termination policy: the wrapped one, plus the trials the user asked to stop.

    Args:
        inner: the sweep's own policy, or None.
    """

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.requested: set[str] = set()

    def should_stop(self, trial_id: str, curves: Mapping[str, Sequence[float]], finished: AbstractSet[str]) -> bool:
        if trial_id in self.requested:
            return True
        return self.inner is not None and self.inner.should_stop(trial_id, curves, finished)

    def describe(self, trial_id: str, curves: Mapping[str, Sequence[float]],
                 finished: AbstractSet[str] = frozenset()) -> str:
        if trial_id in self.requested:
            return STOP_NOTE
        return self.inner.describe(trial_id, curves, finished)

    def __repr__(self) -> str:
        return f"UserStops({self.inner!r}, requested={sorted(self.requested)})"


def stop_trial(run, trial_id: str) -> None:
    """Stop one trial of a sweep this kernel drives, at the trial's next evaluation.

    Args:
        run: the :class:`~automl_nb.sweep.Run`.
        trial_id: the trial's id (its folder name under ``trials/``).

    Raises:
        AutoMLError: the sweep is not driven from this process, or no such trial is running.

    Example:
        >>> stop_trial(run, "3")
    """
    trial_id = str(trial_id)
    driver = getattr(run, "_driver", None)
    if driver is None or not run.running:
        raise AutoMLError(f"run {str(run.folder)!r} is not driven from this kernel ({run.status}); "
                          "a trial can be stopped only by the process that runs the sweep")
    records = {r.trial_id: r for r in run.trials()}
    if trial_id not in records:
        raise AutoMLError(f"trial {trial_id!r} is not a trial of {str(run.folder)!r}; trials: "
                          f"{', '.join(records) or 'none yet'}")
    if records[trial_id].status not in ("Queued", "Running"):
        raise AutoMLError(f"trial {trial_id!r} has already ended ({records[trial_id].status})")
    if hasattr(run, "stop_trial"):  # the sweep layer's own API, where it has one
        run.stop_trial(trial_id)
        return
    policy = driver.policy
    if not isinstance(policy, UserStops):
        # One attribute swap, read by the driver's thread at each report: no lock needed.
        policy = UserStops(policy)
        driver.policy = policy
    policy.requested.add(trial_id)


def stop_requested(run, trial_id: str) -> bool:
    """Whether the user asked to stop ``trial_id`` (it stops at its next evaluation)."""
    driver = getattr(run, "_driver", None)
    policy = getattr(driver, "policy", None)
    if isinstance(policy, UserStops) and str(trial_id) in policy.requested:
        return True
    return str(trial_id) in getattr(driver, "stop_requests", ())  # where the driver keeps them itself


def sweep_client(run) -> Any:
    """The ``distributed.Client`` the run's trials go to while this kernel drives it, else None."""
    client = getattr(run, "client", None)  # the sweep layer's own API, where it has one
    if client is not None:
        return client
    driver = getattr(run, "_driver", None)
    if driver is None or not run.running:
        return None
    return driver.handle.client
