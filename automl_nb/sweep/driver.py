"""The sweep driver: sampler -> executor -> policy -> run store, in one loop on one thread.

The loop drains the trials' events (starts and reports, pushed by the executor into a queue),
collects finished trials, enforces the time budget and cancellation, applies the steering
requests appended to the run folder's log (``automl_nb.sweep.steering``), and fills free slots:
first with trials waiting to run (resumed, extended, cloned, requeued), then with new trials from
the sampler. Every decision is written to the run store first, so a driver killed at any point can
be resumed from the folder alone.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import Callable

from automl_nb.errors import AutoMLError, SpecError
from automl_nb.sweep.executor import Executor, Outcome
from automl_nb.sweep.policies import POLICY_NOTE, trial_report_count
from automl_nb.sweep.steer import SteeringMixin
from automl_nb.sweep.steering import SteeringLog
from automl_nb.sweep.store import (
    CANCELED, COMPLETED, FAILED, HEARTBEAT_SECONDS, QUEUED, RUNNING, STOPPED_BY_POLICY, RunStore, TrialRecord,
)

log = logging.getLogger(__name__)

# A trial that runs out of GPU memory restarts with half the batch (and twice the
# gradient accumulation, so the effective batch is unchanged) up to this many times.
MAX_OOM_RETRIES = 3
# AutoMode starts a trial only when at least this share of a typical (median completed) trial's
# time is left: a trial cut at half its epochs has kept its best checkpoint, one cut sooner
# rarely beats the trials before it.
MIN_TRIAL_SHARE = 0.5
# The note on a trial stopped by Run.stop_trial (a dashboard's Stop, `%automl stop TRIAL`).
USER_STOP_NOTE = "stopped by the user"


class SweepDriver(SteeringMixin):
    """Runs one session of a sweep (a fresh start or a resume) to its end.

    Args:
        job: the validated job.
        store: the run folder.
        executor: where trials run (Dask by default; see ``automl_nb.sweep.executor``).
        sampler: gives each trial's sampled values (see ``automl_nb.sweep.samplers``).
        max_trials: trials in the sweep (the job's limit, capped by the sampler's capacity).
        policy: early termination (``automl_nb.sweep.policies``), or None.
        time_budget_seconds: seconds this session may run; running trials are canceled after.
        listeners: callables given every event dict (for live displays).
        max_concurrent: trials at once (default: the job's ``max_concurrent_trials``; AutoMode
            may run fewer, see ``automl_nb.sweep.automode_plan.planned_concurrency``).
    """

    def __init__(self, job, store: RunStore, executor: Executor, sampler, *, max_trials: int,
                 policy=None, time_budget_seconds: float,
                 listeners: list[Callable[[dict], None]] | None = None, max_concurrent: int | None = None) -> None:
        self.job, self.store, self.executor, self.sampler, self.policy = job, store, executor, sampler, policy
        self.max_trials = max_trials
        self.max_concurrent = max_concurrent or job.limits.max_concurrent_trials
        self.listeners = listeners if listeners is not None else []  # the Run's list: later subscribers count
        self.events: queue.Queue = queue.Queue()
        self.cancel_requested = threading.Event()
        self.stop_requests: set[str] = set()  # trials the user asked to stop (Run.stop_trial)
        self.records: dict[str, TrialRecord] = {}
        self.running: set[str] = set()  # submitted and not yet collected
        self.starts: dict[str, int] = {}  # worker starts since the trial's last submission
        # Each trial's primary metric per report, in epoch order, kept as reports come (the policy's
        # ``curves``), and the epochs of those reports: a report never rebuilds another trial's curve.
        self.curves: dict[str, list[float]] = {}
        self.curve_epochs: dict[str, list[int]] = {}
        self.stop_reasons: dict[str, str] = {}  # a policy's reason, noted once the trial has stopped
        self.finished: set[str] = set()
        self.next_index = 0  # the next trial's number
        self.next_sample = 0  # the sampler's next index (steered trials draw nothing)
        self.exhausted = False
        self.started = time.monotonic()
        self.deadline = self.started + time_budget_seconds
        self.used_before = store.run_info().get("elapsed_seconds", 0.0)  # by earlier sessions
        self.limits = {**job.limits.to_dict(), "max_concurrent_trials": self.max_concurrent}
        self.steering = SteeringLog(store.folder)
        self.outcomes: dict[str, dict] = {}  # steering request id -> what became of it (run.json)
        self.last_heartbeat = 0.0
        self.metric = job.primary_metric
        self.ended_because: str | None = None  # why an AutoMode sweep ended before max_trials
        self.policy_state: dict | None = None  # a stateful policy's state (ASHA's rungs) as last written

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> str:
        """Drive the sweep until every trial has ended (or time runs out, or cancel); return the run status."""
        reason = None
        try:
            self.store.claim()
            self.executor.start(self.events.put)  # events arrive on the executor's threads: queue them for ours
            self._restore()
            while self._busy():
                self._handle_events(wait=0.1)
                self._collect_done()
                reason = self._stop_reason()
                if reason:
                    self._stop_all(reason)
                    break
                self._steer(self.steering.read_new())
                self._fill_slots()
                self._heartbeat()
        finally:
            self.executor.close()
        status = CANCELED if reason else self._final_status()
        if reason == "timeout" and self._budget_is_the_end():
            status = COMPLETED
        self._end(status, reason)
        return status

    def _busy(self) -> bool:
        """Trials run or wait, or more may be drawn; before saying no, read the steering log once more."""
        for look in range(2):
            if self.running or self._more_to_run() or self._waiting():
                return True
            if look == 0:
                self._steer(self.steering.read_new())
        return False

    def _more_to_run(self) -> bool:
        return not self.exhausted and self.next_sample < self.max_trials and self._time_for_a_trial()

    def _waiting(self) -> list[TrialRecord]:
        """Trials to run before new samples: unfinished and not running (resumed, extended, cloned, requeued)."""
        return [r for r in self.records.values() if not r.finished and r.trial_id not in self.running]

    def _budget_is_the_end(self) -> bool:
        """An AutoMode sweep that the budget ends completes, once a trial has a metric (the budget is its plan)."""
        return self.job.run_mode == "automode" and any(r.best_metric is not None for r in self.records.values())

    def _time_for_a_trial(self) -> bool:
        """AutoMode starts no trial that would get less than ``MIN_TRIAL_SHARE`` of a typical trial's time."""
        if self.job.run_mode != "automode":
            return True
        durations = sorted(r.duration for r in self.records.values() if r.status == COMPLETED and r.duration)
        if not durations:
            return True
        if self.deadline - time.monotonic() >= MIN_TRIAL_SHARE * durations[len(durations) // 2]:
            return True
        self.ended_because = "the time budget had no room for another trial"
        return False

    def _stop_reason(self) -> str | None:
        if self.cancel_requested.is_set():
            return "user"
        if time.monotonic() >= self.deadline:
            return "timeout"
        return None

    def _final_status(self) -> str:
        records = self.records.values()
        return FAILED if records and all(r.status == FAILED for r in records) else COMPLETED

    # -- resume ----------------------------------------------------------------------------
    def _restore(self) -> None:
        """Take up the trials of earlier sessions: finished ones stay, the others run again.

        Then the steering log is replayed: applied limits and narrowed spaces take effect again,
        requests no session applied yet are applied now.
        """
        info = self.store.run_info()
        if hasattr(self.policy, "restore"):  # ASHA's rung results, from run.json (None on a fresh run)
            self.policy_state = info.get("policy_state")
            self.policy.restore(self.policy_state, reports=trial_report_count(self.job))
        for record in self.store.trials():
            self.records[record.trial_id] = record
            self.next_index = max(self.next_index, record.index + 1)
            if record.sampler_index is not None:
                self.next_sample = max(self.next_sample, record.sampler_index + 1)
                value = record.best_metric if record.status in (COMPLETED, CANCELED) else None
                self.sampler.restore(record.sampler_index, record.sampler_state, value, record.finished)
            rows = self.store.metrics(record.trial_id)
            points = sorted((row["epoch"], row[self.metric]) for row in rows if self.metric in row)
            self.curve_epochs[record.trial_id] = [epoch for epoch, _ in points]
            self.curves[record.trial_id] = [value for _, value in points]
            if record.finished:
                self.finished.add(record.trial_id)
        self.outcomes = dict(info.get("steering") or {})
        self._steer(self.steering.read_new(), replay=True)
        for record in self._waiting():
            if record.attempts or record.origin is None:  # a clone that never started is not "restarted"
                resumable = self.store.has_resume_point(record.trial_id)
                record.notes.append("resumed from its last checkpoint" if resumable else "restarted")
            if len(self.running) < self.max_concurrent:
                self._submit(record, resume=True)
        # Unfinished trials beyond the free slots wait their turn in _fill_slots.

    # -- submitting ------------------------------------------------------------------------
    def _fill_slots(self) -> None:
        waiting = self._waiting()
        while len(self.running) < self.max_concurrent and waiting:
            self._submit(waiting.pop(0), resume=True)
        while len(self.running) < self.max_concurrent and self._more_to_run():
            self._new_trial()

    def _new_trial(self) -> None:
        index, sample = self.next_index, self.next_sample
        sampled = self.sampler.suggest(sample)
        if sampled is None:
            self.exhausted = True
            return
        self.next_index, self.next_sample = index + 1, sample + 1
        record = TrialRecord(trial_id=str(index), index=index, sample=sample, sampled=dict(sampled),
                             sampler_state=self.sampler.state(sample),
                             parameters={**self.job.training_parameters, **sampled})
        self.records[record.trial_id] = record
        try:
            self.job.trial_parameters(sampled)  # cross-field rules between sampled values
        except SpecError as error:
            self._end_trial(record, FAILED, error=f"SpecError: {error}")
            return
        self._submit(record, resume=True)

    def _submit(self, record: TrialRecord, resume: bool) -> None:
        from automl_nb.train.setup import trial_from_job

        folder = self.store.trial_location(record.trial_id)  # a URL for a run on a remote store
        trial = trial_from_job(self.job, folder, record.trial_id, parameters=record.parameters, resume=resume)
        record.status, record.stopped_by = QUEUED, None
        self.starts[record.trial_id] = 0
        self.store.write_trial(record)
        # Every report waits for a verdict: a policy, or the user (Run.stop_trial), may stop any trial.
        self.executor.submit(record.trial_id, trial, wait_for_verdict=True)
        self.running.add(record.trial_id)

    # -- events from the workers -----------------------------------------------------------
    def _handle_events(self, wait: float) -> None:
        try:
            event = self.events.get(timeout=wait)
        except queue.Empty:
            return
        while True:
            self._handle_event(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _handle_event(self, event: dict) -> None:
        record = self.records.get(event.get("trial"))
        if record is None or record.trial_id not in self.running:
            return  # a late event of a trial that has ended
        if event["kind"] == "start":
            self._on_start(record, event)
        elif event["kind"] == "report":
            self._on_report(record, event["epoch"], event["metrics"], event.get("logged"))

    def _on_start(self, record: TrialRecord, event: dict) -> None:
        record.attempts += 1
        self.starts[record.trial_id] += 1
        record.status = RUNNING
        record.started = record.started or time.time()
        if self.starts[record.trial_id] > 1:  # Dask runs a task again when its worker dies
            record.notes.append("worker died; resumed from its last checkpoint")
        self.store.write_trial(record)
        self._notify({"kind": "trial_started", "trial": record.trial_id, "attempt": record.attempts,
                      "worker": event.get("worker"), "pid": event.get("pid")})

    def _on_report(self, record: TrialRecord, epoch: int, metrics: dict, logged: float | None = None) -> None:
        value = float(metrics.get(self.metric, math.nan))
        curve = self.curves.setdefault(record.trial_id, [])
        epochs = self.curve_epochs.setdefault(record.trial_id, [])
        while epochs and epochs[-1] >= epoch:  # a resumed trial reports again from its checkpoint
            epochs.pop()
            curve.pop()
        epochs.append(epoch)
        curve.append(value)
        record.epochs = epoch
        if math.isfinite(value) and (record.best_metric is None or value >= record.best_metric):
            record.best_metric, record.best_epoch = value, epoch
        elif len(epochs) > 1 and record.best_epoch is not None and record.best_epoch >= epoch:
            self._rescore(record)  # the best came after the checkpoint it resumed from
        # A trial the user extended runs its epochs: early termination already had its say.
        judged = not record.extended and self._policy_stops(record)
        stop = record.stopped_by == STOPPED_BY_POLICY or self._user_stops(record) or judged
        self.executor.send_verdict(record.trial_id, epoch, stop)
        self.store.write_trial(record)
        self._notify({"kind": "report", "trial": record.trial_id, "epoch": epoch, "metrics": metrics,
                      "logged": logged})

    def request_stop(self, trial_id: str) -> None:
        """Stop ``trial_id`` at its next report, as a policy would (called from any thread)."""
        record = self.records.get(trial_id)
        if record is None or record.trial_id not in self.running:
            raise AutoMLError(f"trial {trial_id!r} is not running in this sweep; running: "
                              f"{', '.join(sorted(self.running, key=int)) or 'none'}")
        self.stop_requests.add(trial_id)

    def _user_stops(self, record: TrialRecord) -> bool:
        if record.trial_id not in self.stop_requests:
            return False
        record.stopped_by = STOPPED_BY_POLICY  # a verdict: resume() leaves the trial alone
        self.stop_reasons[record.trial_id] = USER_STOP_NOTE
        return True

    def _rescore(self, record: TrialRecord) -> None:
        """Best metric and epoch from the trial's curve as it is now."""
        points = [(v, e) for v, e in zip(self.curves[record.trial_id], self.curve_epochs[record.trial_id])
                  if math.isfinite(v)]
        record.best_metric, record.best_epoch = max(points) if points else (None, None)

    def _policy_stops(self, record: TrialRecord) -> bool:
        if self.policy is None:
            return False
        curves = self.curves  # trial id -> metric per report, kept incrementally by _on_report
        stop = self.policy.should_stop(record.trial_id, curves, self.finished)
        self._save_policy_state()
        if not stop:
            return False
        record.stopped_by = STOPPED_BY_POLICY
        self.stop_reasons[record.trial_id] = self.policy.describe(record.trial_id, curves, self.finished)
        return True

    def _save_policy_state(self) -> None:
        """Write a stateful policy's state to run.json when it changed, before its verdict is sent."""
        if not hasattr(self.policy, "state"):
            return
        state = self.policy.state()
        if state != self.policy_state:
            self.store.write_run(policy_state=state)
            self.policy_state = state

    # -- trials that ended -----------------------------------------------------------------
    def _collect_done(self) -> None:
        for outcome in self.executor.collect():
            self.running.discard(outcome.trial_id)
            self._on_outcome(self.records[outcome.trial_id], outcome)

    def _on_outcome(self, record: TrialRecord, outcome: Outcome) -> None:
        if outcome.result is not None:
            self._on_result(record, outcome.result)
        elif outcome.error is not None:
            self._end_trial(record, FAILED, error=outcome.error, traceback=outcome.traceback)
        else:
            self._end_trial(record, CANCELED)

    def _on_result(self, record: TrialRecord, result: dict) -> None:
        if result.get("out_of_memory") and self._retry_smaller(record):
            return
        record.best_metric = result.get("best_metric", record.best_metric)
        record.best_epoch = result.get("best_epoch", record.best_epoch)
        record.epochs = result.get("epochs_completed", record.epochs)
        status = result["status"]
        reason = self.stop_reasons.pop(record.trial_id, None)
        if status == CANCELED and record.stopped_by == STOPPED_BY_POLICY:
            record.notes.append(reason if reason == USER_STOP_NOTE else f"{POLICY_NOTE}{reason}")
        if status == COMPLETED:
            record.stopped_by = None  # a stop decided on the last report came too late to matter
            if result.get("stopped_early"):
                record.notes.append(f"early stopping at epoch {record.epochs}")
        self._end_trial(record, status, error=result.get("error"), traceback=result.get("traceback"))

    def _retry_smaller(self, record: TrialRecord) -> bool:
        """Restart an out-of-memory trial with half the batch; False when out of retries."""
        params = self.job.trial_parameters(record.parameters)
        batch, accumulate = params["training_batch_size"], params["gradient_accumulation_step"]
        if record.oom_retries >= MAX_OOM_RETRIES or batch < 2:
            record.notes.append(f"out of memory at batch {batch}; no retries left")
            return False
        record.oom_retries += 1
        record.parameters = {**record.parameters, "training_batch_size": batch // 2,
                             "validation_batch_size": max(1, params["validation_batch_size"] // 2),
                             "gradient_accumulation_step": accumulate * 2}
        record.notes.append(f"out of memory at batch {batch}: retry {record.oom_retries} with batch "
                            f"{batch // 2} x {accumulate * 2} accumulation")
        self.curves.pop(record.trial_id, None)
        self.curve_epochs.pop(record.trial_id, None)
        self._submit(record, resume=False)
        return True

    def _end_trial(self, record: TrialRecord, status: str, error: str | None = None,
                   traceback: str | None = None) -> None:
        record.status, record.error, record.traceback = status, error, traceback
        record.ended = time.time()
        if record.finished:
            self.finished.add(record.trial_id)
            told = record.best_metric if status in (COMPLETED, CANCELED) else None
            if record.sampler_index is not None:  # a steered trial was not drawn: nothing to tell
                self.sampler.tell(record.sampler_index, told)
        self.store.write_trial(record)
        self._notify({"kind": "trial_ended", "trial": record.trial_id, "status": status})

    # -- stopping everything ---------------------------------------------------------------
    def _stop_all(self, reason: str) -> None:
        """Cancel every running or queued trial; resume() continues them later."""
        for trial_id in sorted(self.running, key=int):
            record = self.records[trial_id]
            self.executor.send_verdict(trial_id, math.inf, True)
            record.stopped_by = reason
            record.notes.append("canceled: the job's timeout_minutes ran out" if reason == "timeout"
                                else "canceled by the user")
            self._end_trial(record, CANCELED)
        self.executor.cancel(list(self.running))
        self.running.clear()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= HEARTBEAT_SECONDS:
            self.last_heartbeat = now
            self.store.write_run(heartbeat=time.time())

    def _end(self, status: str, reason: str | None) -> None:
        info = self.store.run_info()
        elapsed = info.get("elapsed_seconds", 0.0) + time.monotonic() - self.started
        if reason == "timeout" and status == COMPLETED:
            self.ended_because = "the time budget (timeout_minutes) ended the AutoMode sweep"
        self.store.write_run(status=status, ended=time.time(), elapsed_seconds=elapsed, stopped_by=reason,
                             ended_because=self.ended_because)
        self._notify({"kind": "run_ended", "status": status})

    def _notify(self, event: dict) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken display must not stop the sweep
                log.exception("sweep listener %r failed on %s", listener, event.get("kind"))
