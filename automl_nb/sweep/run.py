"""Submit a job as a sweep and hold its run: status, wait, cancel, leaderboard, resume.

``submit`` validates the job, checks its data, makes the run folder and the cluster, and
returns a :class:`Run` at once; the driver runs on a background thread, so the notebook stays
usable.
After a kernel restart, ``load_run(folder).resume()`` continues the sweep from its folder.
A run may live on a URL (``submit(job, "s3://bucket/runs/x")``, ``load_run("s3://...")``): this
process then works on a local mirror of it, synced while it drives (:mod:`automl_nb.sweep.remote`).
A sweep is steered while it runs (extend, clone, requeue, live limits, a narrowed space) through
requests logged in its folder, from any process; see :mod:`automl_nb.sweep.steering`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from automl_nb.errors import AutoMLError
from automl_nb.sweep.executor import Executor
from automl_nb.sweep.failures import FailureWatch
from automl_nb.sweep.store import RunStore, free_folder, is_remote, open_store

DEFAULT_RUNS_FOLDER = Path("runs")
# wait() looks for new failures at most this often (a look reads every trial record).
FAILURE_LOOK_SECONDS = 1.0


class Run:
    """A sweep's run folder, and its driver while this process drives it.

    Attributes:
        folder: the run folder (see ``automl_nb.sweep.store``); for a run on a URL, this machine's mirror of it.
        url: the run's URL (``s3://...``) for a run on a remote store, else None.
    """

    def __init__(self, folder: str | os.PathLike | RunStore) -> None:
        self.store = folder if isinstance(folder, RunStore) else open_store(folder)
        self.folder = self.store.folder
        self.url = self.store.url
        if not (self.folder / "run.json").exists():
            raise AutoMLError(f"{str(self.folder)!r} is not a run folder (no run.json); "
                              "give the folder that job.submit() or `automl-nb run` made")
        self._driver = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.listeners: list[Callable[[dict], None]] = []
        self._failures = FailureWatch()  # which failures wait() and %automl status have told

    # -- state -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """NotStarted, Starting, Running, Completed, Failed or Canceled; Interrupted when its driver died."""
        status = self.store.run_info().get("status", "NotStarted")
        if status in ("Starting", "Running") and not self.running and not self.store.driver_alive():
            return "Interrupted"
        return status

    @property
    def running(self) -> bool:
        """This process is driving the sweep now."""
        return self._thread is not None and self._thread.is_alive()

    def trials(self):
        """The driver's record of every trial (``TrialRecord``), in order."""
        return self.store.trials()

    def metrics(self, trial_id: str) -> list[dict]:
        """The evaluation rows of one trial."""
        return self.store.metrics(str(trial_id))

    def leaderboard(self):
        """A pandas DataFrame, best first: trial, model, params, the primary metric, status,
        epochs, duration and notes (early termination, retries); for trials exported to ONNX
        (``export()``), their parity check (see :func:`automl_nb.sweep.report.leaderboard`)."""
        from automl_nb.sweep.report import leaderboard

        return leaderboard(self.trials(), self.store.load_job().primary_metric, self.store.trial_folder)

    @property
    def best_trial(self):
        """The record of the trial with the best primary metric (None before any report)."""
        scored = [r for r in self.trials() if r.best_metric is not None]
        return max(scored, key=lambda r: r.best_metric, default=None)

    @property
    def best_model_path(self) -> Path | None:
        """The best trial's best checkpoint (``model_best.pt``)."""
        from automl_nb.train.folder import TrialFolder

        best = self.best_trial
        if best is None:
            return None
        folder = TrialFolder(self.store.trial_folder(best.trial_id))
        return folder.best_checkpoint if folder.has_best_model() else None

    def export(self, trial_id: str | int | None = None, output: str | os.PathLike | None = None, **options: Any):
        """Export a trial's model (the best by default) to ONNX and check it against PyTorch.

        See :func:`automl_nb.export.export_trial` for ``output`` and ``options``; returns its
        :class:`~automl_nb.export.ExportResult`.
        """
        from automl_nb.export import export_run

        return export_run(self, trial_id, output, **options)

    def predictions(self, trial_id: str | int):
        """A trial's validation predictions at its best evaluation: a pandas DataFrame, one row per
        image (see :mod:`automl_nb.analysis.predictions`).

        Example:
            >>> run.predictions(3).head()
        """
        from automl_nb.analysis.predictions import read_predictions

        return read_predictions(self.store.trial_folder(str(trial_id)))

    def replay(self, policy: Any, *, max_concurrent: int | None = None):
        """Run this sweep again in simulated time, without training, under another early-termination policy.

        See :func:`automl_nb.sweep.replay.replay` for ``policy`` (a mapping, a text such as
        ``"type: asha"``, or None) and ``max_concurrent``; returns its
        :class:`~automl_nb.sweep.replay.ReplayResult` (table, summary, ``plot()``).

        Example:
            >>> run.replay({"type": "bandit", "slack_factor": 0.1}).compute_ratio
        """
        from automl_nb.sweep.replay import replay

        return replay(self, policy, max_concurrent=max_concurrent)

    # -- control ---------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[dict], None]) -> None:
        """Call ``listener(event)`` from the driver's thread for every trial start, report and end."""
        self.listeners.append(listener)

    def wait(self, timeout: float | None = None, *, report: Callable[[str], None] | None = print) -> str:
        """Block until the driver ends (or ``timeout`` seconds pass); return the status.

        Meanwhile each failed trial is told once, as it fails (``trial 3 failed: <reason>``),
        and a sweep that ended with every trial failed says so at the end (``all 4 trials
        failed; the first (trial 0): <reason>``). See :meth:`failure_news`.

        Args:
            timeout: the most seconds to wait (None: until the sweep ends).
            report: what those lines are given to (default ``print``; None: say nothing).

        Raises:
            The driver's own error, if it crashed (trial errors do not raise: see the leaderboard).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Join in short steps so Ctrl-C (KeyboardInterrupt) reaches the caller at once.
        if self.running:  # in a notebook, widget events (a dashboard's Stop) are handled meanwhile
            from automl_nb.ui_events import join_handling_ui_events

            join_handling_ui_events(self._thread, deadline, on_step=self._failure_teller(report))
        if report is not None:
            for line in self.failure_news():
                report(line)
        if self._error is not None and not self.running:
            raise self._error
        return self.status

    def failure_news(self) -> list[str]:
        """Lines about failed trials that this Run has not told yet: ``trial 3 failed: <reason>``
        for each; then, once the sweep has ended with every trial failed, ``all 4 trials failed;
        the first (trial 0): <reason>`` (every time). ``wait()`` and ``%automl status`` print them.

        Example:
            >>> for line in run.failure_news():
            ...     print(line)
        """
        ended = not self.running and self.status not in ("NotStarted", "Starting", "Running")
        return self._failures.news(self.trials(), ended)

    def _failure_teller(self, report: Callable[[str], None] | None) -> Callable[[], None]:
        """wait()'s step: tell new failures while the sweep runs (the end's sentence comes after)."""
        last_look = time.monotonic()

        def tell() -> None:
            nonlocal last_look
            if report is None or time.monotonic() - last_look < FAILURE_LOOK_SECONDS:
                return
            last_look = time.monotonic()
            for line in self._failures.news(self.trials(), ended=False):
                report(line)

        return tell

    def cancel(self) -> None:
        """Stop the sweep: running trials are canceled (resume() continues them later)."""
        if self._driver is not None:
            self._driver.cancel_requested.set()

    @property
    def cancel_requested(self) -> bool:
        """:meth:`cancel` was called and the sweep is winding down."""
        return self._driver is not None and self._driver.cancel_requested.is_set()

    def stop_trial(self, trial_id: str | int) -> None:
        """Stop one running trial at its next evaluation, as an early-termination policy would.

        The trial ends Canceled with "stopped by the user" in its notes, keeps its best
        checkpoint, and ``resume()`` leaves it alone. The request is logged in the run folder
        (``steering.jsonl``); a sweep driven by another live process (another kernel, the CLI)
        is stopped through that log.

        Raises:
            AutoMLError: no live process drives the sweep, or the trial is not running.

        Example:
            >>> run.stop_trial("3")
        """
        from automl_nb.sweep.steering import append_request

        if self.running:
            self._driver.request_stop(str(trial_id))
            append_request(self.folder, "stop", trial=str(trial_id))  # the record; the driver sees it asked
        elif self.store.driver_alive():
            self._request("stop", trial=str(trial_id))
        else:
            raise AutoMLError(f"run {str(self.folder)!r} is not driven from this process ({self.status}); "
                              "a trial can be stopped only while a process runs the sweep")

    def stop_requested(self, trial_id: str | int) -> bool:
        """Whether :meth:`stop_trial` was called for ``trial_id`` in this session."""
        return self._driver is not None and str(trial_id) in self._driver.stop_requests

    # -- steering (automl_nb.sweep.steering; docs/steering.md) ------------------------------
    def extend_trial(self, trial_id: str | int, epochs: int) -> str:
        """Run a Completed or Canceled trial ``epochs`` more epochs; return the request's id.

        A trial with a last checkpoint (a stopped one) resumes from it with ``number_of_epochs``
        raised by ``epochs`` (the learning-rate schedule stretched to the new total). A Completed
        trial keeps no optimizer state, so a new trial warm-starts from its ``model_best.pt`` with
        a fresh schedule of ``epochs`` epochs; the Completed trial stays as it is. An extended
        trial is not judged by early termination again.

        Like every steering request, it is checked now (AutoMLError/SpecError naming what is
        wrong), logged in the run folder, and applied by the driver at its next turn, whichever
        process drives the sweep; when none does, by the next ``resume()``.

        Example:
            >>> run.extend_trial(3, 5)
        """
        return self._request("extend", trial=str(trial_id), epochs=epochs)

    def clone_trial(self, trial_id: str | int, **edits: Any) -> str:
        """Run a new trial with ``trial_id``'s parameters and ``edits``, before any new sample.

        Example:
            >>> run.clone_trial(3, learning_rate=0.002, optimizer="adamw")
        """
        return self._request("clone", trial=str(trial_id), edits=edits)

    def requeue(self, trial_ids: list[str | int] | None = None) -> str:
        """Run Failed trials again (default: every Failed one), keeping an out-of-memory retry's
        smaller batch; a trial with a last checkpoint resumes from it.

        Example:
            >>> run.requeue()          # every Failed trial
            >>> run.requeue([2, 5])
        """
        ids = None if trial_ids is None else [str(trial_id) for trial_id in trial_ids]
        return self._request("requeue", trials=ids)

    def set_limits(self, *, max_trials: int | None = None, max_concurrent_trials: int | None = None,
                   timeout_minutes: int | None = None) -> str:
        """Change the sweep's limits while it runs: ``max_trials`` (not below the trials already
        drawn), ``max_concurrent_trials``, ``timeout_minutes`` (all sessions together; the deadline
        moves). Trials already running go on.

        Example:
            >>> run.set_limits(max_trials=20, timeout_minutes=90)
        """
        changes = {key: value for key, value in (("max_trials", max_trials),
                                                 ("max_concurrent_trials", max_concurrent_trials),
                                                 ("timeout_minutes", timeout_minutes)) if value is not None}
        return self._request("limits", limits=changes)

    def narrow_space(self, search_space: Any) -> str:
        """Draw new trials from ``search_space`` (the job's YAML shape: a list of subspaces, or its
        YAML text), which must lie within the job's: the same subspaces and keys, a subset of each
        choice, ranges of the same type inside the job's. The bayesian sampler keeps every earlier
        trial's result.

        Example:
            >>> run.narrow_space([{"model_name": {"type": "choice", "values": ["resnet18"]},
            ...                    "learning_rate": {"type": "uniform", "min_value": 0.01, "max_value": 0.03}}])
        """
        return self._request("narrow", search_space=search_space)

    def steering(self) -> list[dict]:
        """Every steering request of the run, in order, each with its ``outcome`` (``pending``,
        ``applied`` or ``refused``) and, when refused, the ``reason``."""
        from automl_nb.sweep.steering import SteeringLog

        outcomes = self.store.run_info().get("steering") or {}
        return [{**request, **outcomes.get(request["id"], {"outcome": "pending"})}
                for request in SteeringLog(self.folder).read_new()]

    def _request(self, kind: str, **arguments: Any) -> str:
        """Check a steering request against the run folder, log it, and return its id."""
        from automl_nb.sweep.steering import SteeringContext, check_request, log_request, new_request, space_yaml

        checked = check_request(SteeringContext.from_store(self.store), {"kind": kind, **arguments})
        if kind == "narrow":
            arguments["search_space"] = space_yaml(checked)  # the log holds plain YAML data
        request = new_request(kind, **arguments)
        if self.store.remote is not None and not self.store.remote.driven_here():
            # A run on a URL that a process of another machine drives (or none): the request goes up
            # first, so one that did not reach the store is not logged.
            self.store.remote.post(request)
        return log_request(self.folder, request)["id"]

    @property
    def client(self):
        """The ``distributed.Client`` the trials go to while this process drives the sweep, else None."""
        return getattr(self._driver.executor, "client", None) if self.running else None

    def resume(self, *, cluster: str | None = None, client: Any = None, check_data: bool = True,
               **options: Any) -> "Run":
        """Continue an interrupted sweep: finished trials stay, the others go on from their
        last checkpoint, and new trials are sampled until max_trials.

        Args:
            cluster, client: as for :func:`submit`.
            check_data: check the job's data again first (it may have changed since), as
                :func:`submit` does.
            options: as for :func:`submit`.

        Raises:
            AutoMLError: the sweep is still being driven, here or by another live process.
            DataCheckError: the data check found problems (nothing is started).
        """
        self.store.refresh()  # a run on a URL: what the store holds now
        if self.running or self.store.driver_alive():
            raise AutoMLError(f"run {str(self.folder)!r} is still running; wait() or cancel() it first")
        job = self.store.load_job()
        self.trials()  # a damaged trial record stops us here, before any cluster starts (RunFolderError)
        if check_data:
            _check_data(job)
        self._start(job, cluster=cluster, client=client, **options)
        return self

    def _start(self, job, *, cluster: str | None = None, client: Any = None, trial_function: Callable | None = None,
               time_budget_seconds: float | None = None, executor: Executor | None = None,
               no_estimate: bool = False) -> None:
        from automl_nb.sweep.plan import make_driver

        executor = executor or _dask_executor(job, cluster, client, trial_function)
        try:
            self._driver = make_driver(job, self.store, executor, time_budget_seconds=time_budget_seconds,
                                       listeners=self.listeners, no_estimate=no_estimate)
        except BaseException:
            executor.close()
            raise
        self._error = None
        self.store.write_run(status="Starting")
        self.store.start_sync()  # a run on a URL: its files go up, the trials' come down
        self._thread = threading.Thread(target=self._drive, name=f"automl-sweep-{self.folder.name}", daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        from automl_nb.sweep.report import write_summary

        try:
            self._driver.run()  # closes the executor when it ends
            self.store.stop_sync()  # a run on a URL: every trial's last files are in the mirror now
            write_summary(self)
        except BaseException as error:  # recorded, and raised again by wait()
            self._error = error
            self.store.write_run(status="Failed", error=f"{type(error).__name__}: {error}")
        finally:
            try:
                self.store.stop_sync(pull=False, ended=True)  # the summary (or the failure) goes up too
            except Exception as error:  # the store is out of reach: wait() says so
                self._error = self._error or error

    def __repr__(self) -> str:
        return f"Run({self.store.location!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        """In a notebook a run shows its status and leaderboard (as of when it is displayed)."""
        from html import escape

        head = f"<p><b>{escape(self.store.location)}</b>: {escape(self.status)}</p>"
        return head + self.leaderboard().to_html(index=False, na_rep="", float_format="{:.4f}".format)


def _dask_executor(job, cluster: str | None, client: Any, trial_function: Callable | None):
    from automl_nb.cluster import connect
    from automl_nb.sweep.executor import DaskExecutor

    from automl_nb.spec.job_checks import fixed_values

    distributed = any(value for _, value in fixed_values("distributed", job.training_parameters, job.search_space))
    handle = connect(cluster or job.cluster_connection(), client, max_concurrent_trials=job.limits.max_concurrent_trials,
                     distributed=distributed)
    return DaskExecutor(handle, trial_function)


def submit(job, output: str | os.PathLike | None = None, *, cluster: str | None = None, client: Any = None,
           check_data: bool = True, **options: Any) -> Run:
    """Validate ``job``, check its data, create its run folder and start the sweep in the background.

    Args:
        job: an image job (single trial, AutoMode or a search space).
        output: the run folder (default ``runs/<job name>``, made unique with -2, -3...), or a URL
            (``s3://bucket/runs/x``, ``gs://``, ``abfs://``; see :mod:`automl_nb.sweep.remote`).
        cluster: a Dask scheduler address (overrides the job's ``cluster``).
        client: an existing ``distributed.Client`` to run on.
        check_data: first read every label line and every image header of the training and
            validation data (:func:`automl_nb.data.check.check_job_data`), so a data mistake
            is reported, all of it, before anything starts. ``False`` skips it, e.g. for a
            large data set on a remote store you trust: reading every header there costs a
            request per image. Trials still fail on bad data, one mistake at a time.
        options: ``no_estimate`` (True: AutoMode plans no epochs from timing its models, as
            ``--no-estimate``); for tests and benchmarks: ``trial_function`` (what a worker runs
            instead of ``run_trial``), ``time_budget_seconds`` (instead of timeout_minutes),
            ``executor`` (an :class:`~automl_nb.sweep.executor.Executor` instead of the Dask cluster).

    Returns:
        The :class:`Run`, already running.

    Raises:
        SpecError: the job is invalid (nothing is created).
        AutoMLError: ``properties.node_count_per_trial`` above 1: a trial runs on one machine.
        DataCheckError: the data check found problems; its ``problems`` lists them all, its
            message the first 20 (nothing is created).

    Example:
        >>> run = submit(job, "runs/shapes")
        >>> run = submit(job, check_data=False)  # data on a store you trust
        >>> run = submit(job, "s3://bucket/runs/shapes")  # workers need no shared folder
    """
    job.validate()
    from automl_nb.train.distributed import check_node_count  # torch-free: the kernel may import it

    check_node_count(job.properties)  # a trial runs on one machine
    if is_remote(output):
        store = open_store(output, create=True)  # checks the URL; refuses one that holds a run
    else:
        folder = Path(output) if output is not None else free_folder(DEFAULT_RUNS_FOLDER / (job.name or job.task))
        if (folder / "run.json").exists():
            raise AutoMLError(f"output: {str(folder)!r} already holds a run; resume it with "
                              f"load_run({str(folder)!r}).resume() or choose a new folder")
        store = RunStore(folder)
    if check_data:
        _check_data(job)
    store.create(job)
    run = Run(store)
    run._start(store.load_job(), cluster=cluster, client=client, **options)
    return run


def _check_data(job) -> None:
    """The data check before a run folder, cluster or trial exists (raises DataCheckError)."""
    from automl_nb.data.check import check_job_data

    check_job_data(job)


def load_run(folder: str | os.PathLike) -> Run:
    """The run in ``folder`` or at a URL (``s3://...``), e.g. after a kernel restart; ``.resume()`` continues it."""
    return Run(folder)


def as_run(source: Any) -> Any:
    """``source`` if it is a :class:`Run` (or anything else that is not a place), else the run at
    that folder or URL (:func:`load_run`): what the panels and the audit take as their ``run``."""
    return load_run(source) if isinstance(source, (str, os.PathLike)) else source
