"""Steering a sweep while it runs: requests in the run folder's event log, checked twice.

A request (stop, extend, clone, requeue, limits, narrow) is checked when it is made, against the
run folder, and appended as one JSON line to ``steering.jsonl`` (see :func:`append_request`), so
any process can steer: the kernel that drives the sweep, another kernel, the CLI. The driver
reads the lines it has not seen at each turn of its loop (:class:`SteeringLog` remembers the
offset), checks each again against what it knows now, applies it or refuses it, and records the
outcome in ``run.json`` (``steering``: request id -> outcome). On resume the driver reads the
whole log: the effective limits and search space are replayed from the applied requests, and a
request no session applied yet is applied then. See ``docs/steering.md``.

A line of the log::

    {"id": "3f2a9c1e", "time": 1760000000.0, "kind": "extend", "trial": "3", "epochs": 2}
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from automl_nb._atomic import append_jsonl
from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec import Limits
from automl_nb.spec.limits import LIMIT_KEYS
from automl_nb.sweep.store import CANCELED, COMPLETED, FAILED, TrialRecord

STEERING_FILE = "steering.jsonl"
KINDS = ("stop", "extend", "clone", "requeue", "limits", "narrow")


def new_request(kind: str, **arguments: Any) -> dict:
    """A request as the log keeps it: a new id, the time, the kind and its arguments.

    Example:
        >>> sorted(new_request("extend", trial="3", epochs=2))
        ['epochs', 'id', 'kind', 'time', 'trial']
    """
    return {"id": uuid.uuid4().hex[:8], "time": time.time(), "kind": kind, **arguments}


def append_request(folder: str | Path, kind: str, **arguments: Any) -> dict:
    """Append a :func:`new_request` to the run folder's log and return it.

    Example:
        >>> request = append_request("runs/shapes", "extend", trial="3", epochs=2)
    """
    return log_request(folder, new_request(kind, **arguments))


def log_request(folder: str | Path, request: dict) -> dict:
    """Append ``request`` to the run folder's log (a single whole-line write) and return it."""
    append_jsonl(Path(folder) / STEERING_FILE, request)
    return request


def when_applied(run) -> str:
    """When a request logged now takes effect: at the driver's next turn while a process drives
    ``run`` (this one or another), else at its next ``resume()``."""
    if run.running or run.store.driver_alive():
        return "the driver applies it at its next turn"
    return "applied when the run resumes"


def request_logged(run, request_id: str, what: str, resume_command: str) -> str:
    """What the magics and the CLI say of a logged request: when it takes effect, and the command
    that resumes the run when none drives it (``resume_command``, e.g. ``%automl resume``)."""
    when = when_applied(run)
    if when.endswith("resumes"):
        when += f" ({resume_command} {run.store.location})"
    return f"{run.store.location}: {what}: request {request_id} logged; {when}"


class SteeringLog:
    """Reads the requests of ``steering.jsonl`` that it has not read yet (by byte offset).

    Only whole lines are read: a line being appended by another process waits for the next turn.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / STEERING_FILE
        self.offset = 0

    def read_new(self) -> list[dict]:
        """The requests appended since the last call (all of them on the first)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        whole = data[:data.rfind(b"\n") + 1]
        self.offset += len(whole)
        requests = []
        for line in whole.decode("utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a damaged line is skipped, not fatal: the sweep goes on
                continue
            if isinstance(row, dict) and "id" in row:
                requests.append(row)
        return requests


@dataclass
class SteeringContext:
    """What a request is checked against: the job, the trials and the effective limits.

    Attributes:
        job: the run's job.
        records: trial id -> record.
        limits: the effective ``max_trials``, ``max_concurrent_trials``, ``timeout_minutes``.
        sampled: trials the sampler has drawn so far (clones and extensions not counted).
        elapsed_seconds: time the sweep has run, all sessions together.
        running: trials submitted and not ended (in the driver); from a folder, Running/Queued ones.
    """

    job: Any
    records: Mapping[str, TrialRecord]
    limits: dict
    sampled: int
    elapsed_seconds: float
    running: set = field(default_factory=set)

    @classmethod
    def from_store(cls, store) -> "SteeringContext":
        """The context as the run folder tells it (for a request made outside the driver)."""
        records = {record.trial_id: record for record in store.trials()}
        job = store.load_job()
        info = store.run_info()
        elapsed = info.get("elapsed_seconds", 0.0)
        if info.get("status") in ("Starting", "Running") and info.get("started"):
            elapsed += max(0.0, time.time() - info["started"])
        return cls(job=job, records=records, limits=effective_limits(job, info), elapsed_seconds=elapsed,
                   sampled=sum(1 for record in records.values() if record.sampler_index is not None),
                   running={tid for tid, record in records.items() if record.status in ("Running", "Queued")})


def effective_limits(job, info: Mapping[str, Any]) -> dict:
    """The job's limits as changed by applied ``limits`` requests (``run.json``'s ``limits``)."""
    return {**job.limits.to_dict(), **(info.get("limits") or {})}


# -- the checks, made when a request is made and again when the driver applies it ------------
def check_request(context: SteeringContext, request: Mapping[str, Any]) -> Any:
    """Check ``request`` against ``context``; return what applying it needs.

    Raises:
        AutoMLError: one clear message naming the trial, key or value and what is allowed.
    """
    kind = request.get("kind")
    if kind == "stop":
        return check_stop(context, request.get("trial"))
    if kind == "extend":
        return check_extend(context, request.get("trial"), request.get("epochs"))
    if kind == "clone":
        return check_clone(context, request.get("trial"), request.get("edits") or {})
    if kind == "requeue":
        return check_requeue(context, request.get("trials"))
    if kind == "limits":
        return check_limits(context, request.get("limits") or {})
    if kind == "narrow":
        return check_narrow(context.job, request.get("search_space"))
    raise AutoMLError(f"steering: kind {kind!r} is not known; allowed: {', '.join(KINDS)}")


def check_trial(context: SteeringContext, trial_id: Any) -> TrialRecord:
    """The record of ``trial_id`` (AutoMLError listing the trials when there is none)."""
    record = context.records.get(str(trial_id))
    if record is None:
        known = ", ".join(sorted(context.records, key=lambda tid: (len(tid), tid))) or "none yet"
        raise AutoMLError(f"trial {str(trial_id)!r} is not a trial of this run; trials: {known}")
    return record


def check_stop(context: SteeringContext, trial_id: Any) -> TrialRecord:
    record = check_trial(context, trial_id)
    if record.trial_id not in context.running:
        raise AutoMLError(f"trial {record.trial_id} is {record.status}, not running; only a running trial can be "
                          "stopped")
    return record


def check_extend(context: SteeringContext, trial_id: Any, epochs: Any) -> tuple[TrialRecord, int]:
    """A Completed or Canceled trial, and its new total of epochs (``number_of_epochs + epochs``)."""
    record = check_trial(context, trial_id)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise AutoMLError(f"extend trial {record.trial_id}: epochs {epochs!r} is not allowed; allowed: int >= 1")
    if record.trial_id in context.running or record.status not in (COMPLETED, CANCELED):
        hint = "; requeue it instead" if record.status == FAILED else "; wait until it ends or stop it first"
        raise AutoMLError(f"extend trial {record.trial_id}: it is {record.status}; only a Completed or Canceled "
                          f"trial can be extended{hint}")
    total = _resolved(context.job, record.parameters, f"extend trial {record.trial_id}")["number_of_epochs"] + epochs
    _resolved(context.job, {**record.parameters, "number_of_epochs": total}, f"extend trial {record.trial_id}")
    return record, total


def check_clone(context: SteeringContext, trial_id: Any, edits: Mapping[str, Any]) -> tuple[TrialRecord, dict]:
    """The source trial and the clone's parameters (the source's, edited), checked by the spec."""
    record = check_trial(context, trial_id)
    if not isinstance(edits, Mapping):
        raise AutoMLError(f"clone trial {record.trial_id}: edits {edits!r} is not a mapping of parameter names to "
                          "values")
    parameters = {**record.parameters, **edits}
    _resolved(context.job, parameters, f"clone trial {record.trial_id}")
    return record, parameters


def check_requeue(context: SteeringContext, trial_ids: Sequence[Any] | None) -> list[TrialRecord]:
    """The Failed trials to run again: those named, or every Failed one (None)."""
    if trial_ids is None:
        failed = [record for record in context.records.values() if record.status == FAILED]
        if not failed:
            raise AutoMLError("requeue: no trial of this run has Failed; nothing to requeue")
        return failed
    records = [check_trial(context, trial_id) for trial_id in trial_ids]
    for record in records:
        if record.status != FAILED:
            raise AutoMLError(f"requeue trial {record.trial_id}: it is {record.status}; only a Failed trial can be "
                              "requeued (extend a Completed or Canceled one)")
    if not records:
        raise AutoMLError("requeue: no trial given; give trial ids, or none to requeue every Failed trial")
    return records


def check_limits(context: SteeringContext, changes: Mapping[str, Any]) -> dict:
    """The new effective limits: in the spec's ranges, max_trials not below the trials drawn so far,
    timeout_minutes beyond the time already run."""
    if not isinstance(changes, Mapping) or not changes:
        raise AutoMLError(f"limits: {changes!r} changes nothing; allowed: {', '.join(LIMIT_KEYS)}")
    for key in changes:
        if key not in LIMIT_KEYS:
            raise AutoMLError(f"limits: {key!r} is not a limit that can change while the sweep runs; allowed: "
                              f"{', '.join(LIMIT_KEYS)}")
    wanted = {**context.limits, **changes}
    checked = Limits(**wanted).to_dict()  # the spec's ranges (SpecError naming the key)
    # Limits caps max_concurrent_trials to max_trials; a live change keeps what was asked for.
    checked["max_concurrent_trials"] = wanted["max_concurrent_trials"]
    if checked["max_trials"] < context.sampled:
        raise AutoMLError(f"limits: max_trials {checked['max_trials']} is below the {context.sampled} trials "
                          f"already started; allowed: int >= {context.sampled}")
    minutes = context.elapsed_seconds / 60
    if "timeout_minutes" in changes and checked["timeout_minutes"] <= minutes:
        raise AutoMLError(f"limits: timeout_minutes {checked['timeout_minutes']} is not beyond the {minutes:.1f} "
                          f"minutes the sweep has run; allowed: int > {minutes:.1f} (to end it now, stop it)")
    return checked


def check_narrow(job, search_space: Any) -> list[dict]:
    """The narrowed search space, checked by the spec and to lie within the job's.

    Within means: as many subspaces as the job's, each with the same keys; a choice keeps a subset
    of its values, a range distribution keeps its type and a range inside the job's; fixed values
    stay. So every earlier trial is a point of the job's space and later ones of both.

    Raises:
        SpecError: ``narrow: search_space[i].key: ...``.
    """
    from automl_nb.spec import check_grid, check_search_space, parse_search_space

    if not job.search_space or job.sweep is None:
        raise AutoMLError(f"narrow: this run is {job.run_mode}, not a sweep over a search_space; nothing to narrow")
    if isinstance(search_space, str):
        import yaml

        search_space = yaml.safe_load(search_space)
        if isinstance(search_space, Mapping) and "search_space" in search_space:
            search_space = search_space["search_space"]
    try:
        subspaces = check_search_space(job.task, parse_search_space(search_space), job.training_parameters)
        if job.sweep.sampling_algorithm.lower() == "grid":
            check_grid(subspaces)
    except SpecError as error:
        raise SpecError(f"narrow: {error}") from None
    if len(subspaces) != len(job.search_space):
        raise SpecError(f"narrow: search_space has {len(subspaces)} subspaces; allowed: the job's "
                        f"{len(job.search_space)}, in the same order (narrow a subspace, do not drop it)")
    for index, (new, old) in enumerate(zip(subspaces, job.search_space)):
        if set(new) != set(old):
            raise SpecError(f"narrow: search_space[{index}] has keys {sorted(new)}; allowed: the job's "
                            f"{sorted(old)}")
        for key, value in new.items():
            if not _within(old[key], value):
                raise SpecError(f"narrow: search_space[{index}].{key}: {_show(value)} is not within the job's "
                                f"{_show(old[key])}; allowed: a subset of a choice's values, or a range of the same "
                                "type inside the job's")
    return subspaces


def space_yaml(subspaces: list[dict]) -> list[dict]:
    """A search space in its YAML form, for the log (distributions as ``{type: ...}``)."""
    from automl_nb.spec.search_space import search_space_to_list

    return search_space_to_list(subspaces)


def _resolved(job, parameters: Mapping[str, Any], what: str) -> dict:
    try:
        return job.trial_parameters(parameters)
    except SpecError as error:
        raise SpecError(f"{what}: {error}") from None


def _within(old: Any, new: Any) -> bool:
    """Whether every value ``new`` can give, ``old`` can give too (same kind of distribution)."""
    from automl_nb.spec import Choice, Distribution

    if not isinstance(old, Distribution):
        return not isinstance(new, Distribution) and new == old
    if type(new) is not type(old):
        return False
    if isinstance(old, Choice):
        return all(value in old.values for value in new.values)
    low, high = _bounds(old)
    new_low, new_high = _bounds(new)
    return low <= new_low and new_high <= high


def _bounds(dist) -> tuple[float, float]:
    """The range a distribution draws in, in its own terms (exponents for the log ones)."""
    if hasattr(dist, "min_value"):
        return dist.min_value, dist.max_value
    if hasattr(dist, "upper"):
        return 0, dist.upper - 1
    return dist.mu - 3 * dist.sigma, dist.mu + 3 * dist.sigma  # the bayesian sampler's bounds of a normal


def _show(value: Any) -> str:
    return json.dumps(value.to_dict()) if hasattr(value, "to_dict") else repr(value)
