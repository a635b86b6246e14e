"""How the sweep driver applies steering requests: a mixin of :class:`~automl_nb.sweep.driver.SweepDriver`.

The requests, their log and their checks are in :mod:`automl_nb.sweep.steering`; here each kind
changes the driver's state on its own thread: a trial waits again (extend in place, requeue), a new
trial waits to run before new samples (clone, the warm-start extension of a Completed trial), the
limits and the deadline move, the sampler draws from a narrowed space. Each trial a request changed
carries the request's id (``TrialRecord.requests``), so a driver that died after applying it and
before recording the outcome does not apply it twice.
"""

from __future__ import annotations

import logging
import time

from automl_nb.errors import AutoMLError
from automl_nb.sweep.steering import SteeringContext, check_request
from automl_nb.sweep.store import QUEUED, TrialRecord

log = logging.getLogger(__name__)


class SteeringMixin:
    """The driver's steering: ``_steer(requests)`` each loop turn, and with ``replay`` on resume.

    Uses the driver's ``job``, ``store``, ``sampler``, ``records``, ``running``, ``finished``,
    ``stop_requests``, ``limits``, ``outcomes``, ``next_index``, ``next_sample``, ``max_trials``,
    ``max_concurrent``, ``deadline``, ``started``, ``used_before``, ``exhausted`` and ``_notify``.
    """

    def _steer(self, requests: list[dict], replay: bool = False) -> None:
        """Apply or refuse each new request, and record the outcome in run.json (``steering``).

        With ``replay`` (a resumed session reading the whole log) an applied ``limits`` or
        ``narrow`` request takes effect again; the trial requests' effects are in the trial records.
        """
        for request in requests:
            done = self.outcomes.get(request["id"])
            if done is not None:
                if replay and done.get("outcome") == "applied" and request.get("kind") in ("limits", "narrow"):
                    self._apply(request, done)
                continue
            try:
                outcome = {"kind": request.get("kind"), "outcome": "applied", **(self._apply(request) or {})}
            except (AutoMLError, ValueError) as error:  # SpecError is both
                outcome = {"kind": request.get("kind"), "outcome": "refused", "reason": str(error)}
                log.warning("steering request %s refused: %s", request["id"], error)
            self.outcomes[request["id"]] = outcome
            self.store.write_run(steering=self.outcomes)
            self._notify({"kind": "steered", "request": request["id"], "request_kind": outcome["kind"],
                          "outcome": outcome["outcome"], "reason": outcome.get("reason")})

    def _apply(self, request: dict, done: dict | None = None) -> dict | None:
        kind = request.get("kind")
        if done is None and self._applied_to_a_trial(request["id"]):
            return None  # applied by a session that died before it recorded the outcome
        if kind == "stop" and str(request.get("trial")) in self.stop_requests:
            return None  # Run.stop_trial in the driving process asked already
        checked = None if done is not None else check_request(self._context(), request)
        return getattr(self, f"_apply_{kind}")(request, checked, done)

    def _context(self) -> SteeringContext:
        return SteeringContext(job=self.job, records=self.records, limits=self.limits, sampled=self.next_sample,
                               elapsed_seconds=self.used_before + time.monotonic() - self.started,
                               running=set(self.running))

    def _applied_to_a_trial(self, request_id: str) -> bool:
        return any(request_id == mark.get("id") for record in self.records.values() for mark in record.requests)

    def _apply_stop(self, request: dict, record: TrialRecord, done) -> None:
        self.stop_requests.add(record.trial_id)

    def _apply_extend(self, request: dict, checked: tuple[TrialRecord, int], done) -> dict:
        from automl_nb.train.folder import TrialFolder

        record, total = checked
        epochs, mark = request["epochs"], {"id": request["id"], "kind": "extend"}
        folder = self.store.trial_folder(record.trial_id)
        resumable = self.store.has_resume_point(record.trial_id)
        if not resumable and TrialFolder(folder).has_best_model():
            # No optimizer or schedule state survives a Completed trial: a new trial warm-starts from its
            # best weights (the initial-checkpoint path), and the source keeps its curve and best model.
            parameters = {**record.parameters, "number_of_epochs": epochs, "checkpoint_run_id": str(folder)}
            self.job.trial_parameters(parameters)
            extension = self._steered_trial(
                request, record, parameters, dict(record.sampled), "extend",
                f"extends trial {record.trial_id} by {epochs} epochs: warm start from its model_best.pt (epoch "
                f"{record.best_epoch}) with a fresh schedule of {epochs} epochs")
            record.notes.append(f"extended by {epochs} epochs as trial {extension.trial_id} (a warm start)")
            record.requests.append(mark)
            self.store.write_trial(record)
            return {"trial": extension.trial_id}
        how = f"resumes from its last checkpoint (epoch {record.epochs})" if resumable else "restarts: no checkpoint"
        record.parameters = {**record.parameters, "number_of_epochs": total}
        record.notes.append(f"extended by {epochs} epochs to {total}; {how}")
        self._requeue(record, mark)
        return {"trial": record.trial_id}

    def _apply_clone(self, request: dict, checked: tuple[TrialRecord, dict], done) -> dict:
        record, parameters = checked
        edits = request.get("edits") or {}
        shown = ", ".join(f"{key}={value!r}" for key, value in edits.items()) or "no edits"
        clone = self._steered_trial(request, record, parameters, {**record.sampled, **edits}, "clone",
                                    f"clone of trial {record.trial_id} with {shown}")
        return {"trial": clone.trial_id}

    def _apply_requeue(self, request: dict, records: list[TrialRecord], done) -> dict:
        for record in records:
            record.notes.append(f"requeued by the user after: {(record.error or 'failed').splitlines()[0][:120]}")
            record.oom_retries = 0  # its halved batch stays; it may halve again
            self._requeue(record, {"id": request["id"], "kind": "requeue"})
        return {"trials": [record.trial_id for record in records]}

    def _apply_limits(self, request: dict, limits: dict | None, done) -> dict:
        limits = done["limits"] if done is not None else limits
        self.limits = dict(limits)
        self.max_concurrent = limits["max_concurrent_trials"]
        if "timeout_minutes" in (request.get("limits") or {}):  # the deadline moves; earlier sessions' time counts
            self.deadline = self.started + limits["timeout_minutes"] * 60 - self.used_before
        self.store.write_run(limits=self.limits)
        self._cap_trials()
        return {"limits": self.limits}

    def _apply_narrow(self, request: dict, subspaces: list[dict] | None, done) -> dict:
        from automl_nb.sweep.samplers import sagemaker_modes
        from automl_nb.sweep.steering import check_narrow

        if not hasattr(self.sampler, "narrow"):
            raise AutoMLError(f"narrow: this run's {self.job.run_mode} sampler has no search space to narrow")
        if subspaces is None:
            subspaces = check_narrow(self.job, request["search_space"])
        first = done["first_sample"] if done is not None else self.next_sample
        self.sampler.narrow(subspaces, first, sagemaker_modes(subspaces, self.job.training_parameters))
        self.exhausted = False  # a narrowed grid has points of its own
        self._cap_trials()
        return {"first_sample": first}

    def _cap_trials(self) -> None:
        """max_trials as the limit and the sampler's capacity (a grid's points) allow; run.json tells it."""
        capacity = self.sampler.capacity
        limit = self.limits["max_trials"]
        self.max_trials = limit if capacity is None else min(limit, capacity)
        self.store.write_run(max_trials=self.max_trials)

    def _steered_trial(self, request: dict, source: TrialRecord, parameters: dict, sampled: dict, kind: str,
                       note: str) -> TrialRecord:
        """A new trial (the next number, its own folder) that runs before new samples."""
        index = self.next_index
        self.next_index += 1
        record = TrialRecord(trial_id=str(index), index=index, sampled=sampled, parameters=parameters,
                             origin={"kind": kind, "source": source.trial_id, "request": request["id"]},
                             requests=[{"id": request["id"], "kind": kind}], notes=[note])
        self.records[record.trial_id] = record
        self.store.write_trial(record)
        return record

    def _requeue(self, record: TrialRecord, mark: dict) -> None:
        """Make an ended trial wait for a slot again (it runs before new samples)."""
        record.requests.append(mark)
        record.status, record.stopped_by, record.error, record.traceback = QUEUED, None, None, None
        self.finished.discard(record.trial_id)
        self.store.write_trial(record)
