"""``%%automl`` (a job's YAML as a cell) and ``%automl COMMAND`` (look at and steer its run).

The magics only parse and call the public API (``automl_nb.spec``, ``automl_nb.sweep``,
``automl_nb.widgets``, ``automl_nb.infer``): anything they do can be done from Python.
Errors of ours become IPython UsageErrors: a message naming the cell line, no traceback.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from automl_nb.errors import AutoMLError
from automl_nb.magics.parsers import cell_parser, key_values, line_parser, magic_help, parse


@magics_class
class AutoMLMagics(Magics):
    """The ``automl`` line and cell magic. ``%load_ext automl_nb`` registers it.

    Attributes:
        current_run: the run the ``%automl`` commands act on by default: the last one
            submitted, resumed or shown in this kernel.
    """

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.current_run = None
        self._cell_parser = cell_parser()
        self._line_parser = line_parser()
        self._predictors: dict[tuple, Any] = {}

    @line_cell_magic
    def automl(self, line: str, cell: str | None = None):
        try:
            if cell is None:
                return self._command(line)
            if line.split()[:1] == ["narrow"]:  # %%automl narrow: the cell is a search space, not a job
                return self._command(line, cell)
            return self._cell(line, cell)
        except AutoMLError as error:
            raise UsageError(str(error)) from None

    # -- %%automl --------------------------------------------------------------------------
    def _cell(self, line: str, cell: str):
        from IPython.display import display

        from automl_nb.data.check import check_job_data
        from automl_nb.magics.cell import job_from_cell
        from automl_nb.magics.summary import JobSummary
        from automl_nb.spec import is_scheduler_address
        from automl_nb.sweep.estimate import estimate_sweep, estimate_wanted

        args = parse(self._cell_parser, line)
        if args is None:  # -h printed the help
            return None
        _check_variable_name(args.out)
        if args.cluster is not None and not is_scheduler_address(args.cluster):
            raise UsageError(f"--cluster: {args.cluster!r} is not a Dask scheduler address; "
                             "allowed: tcp://host:8786 (or tls://, ucx://, inproc://)")
        job = job_from_cell(cell, self.shell.user_ns, name=args.name)
        wanted = estimate_wanted(args.no_estimate)  # times the sweep's models: seconds, cached
        if args.dry_run:  # a data problem shows in the estimate: the data may live where the workers are
            estimate = estimate_sweep(job, cluster=args.cluster, announce=print) if wanted else None
            display(JobSummary(job, cluster=args.cluster, expanded=True, estimate=estimate))
            if job.run_mode == "automode":
                from automl_nb.sweep.plan import automode_plan_lines

                print("\n".join(automode_plan_lines(job, args.cluster, no_estimate=not wanted)))
            if args.out:
                self.shell.user_ns[args.out] = job
            return None
        check_job_data(job)  # every data problem in one error, before anything is timed or made
        estimate = estimate_sweep(job, cluster=args.cluster, check_data=False, announce=print) if wanted else None
        folder = args.output or _default_folder(job)  # a URL (s3://...) stays a string
        display(JobSummary(job, folder, cluster=args.cluster, estimate=estimate))
        return self._adopt(job.submit(folder, cluster=args.cluster, check_data=False, no_estimate=not wanted), args)

    def _dashboard(self, run):
        from automl_nb.widgets.dashboard import SweepDashboard

        return SweepDashboard(run).show()

    # -- %automl COMMAND -------------------------------------------------------------------
    def _command(self, line: str, cell: str | None = None):
        args = parse(self._line_parser, line)
        if args is None:  # -h printed the help
            return None
        if cell is not None:
            args.cell = cell
        return getattr(self, f"_do_{args.command}")(args)

    def _run(self, reference: str | None):
        """The run a command acts on: ``-r`` (a Run variable or a folder), else the current run."""
        from automl_nb.sweep import Run, load_run
        from automl_nb.sweep.store import is_remote

        if reference is None:
            if self.current_run is None:
                raise AutoMLError("no run in this kernel yet: run a %%automl cell first, or name one with "
                                  "-r VARIABLE or -r RUN_FOLDER")
            return self.current_run
        value = self.shell.user_ns.get(reference)
        if isinstance(value, Run):
            return value
        if is_remote(reference):
            return load_run(reference)
        folder = Path(os.path.expanduser(reference))
        if (folder / "run.json").exists():
            return load_run(folder)
        raise AutoMLError(f"-r {reference!r} is neither a Run variable of this notebook nor a run folder "
                          "(a folder with run.json)")

    def _do_status(self, args) -> None:
        from automl_nb.widgets.html import summary_text
        from automl_nb.widgets.snapshot import SnapshotReader

        run = self._run(args.run)
        print(summary_text(SnapshotReader(run).take()))
        for line in run.failure_news():  # failures not told yet in this kernel, and all-failed
            print(line)

    def _do_leaderboard(self, args):
        return self._run(args.run).leaderboard()

    def _do_best(self, args) -> None:
        from automl_nb.widgets.html import format_params

        run = self._run(args.run)
        best = run.best_trial
        metric = run.store.load_job().primary_metric
        if best is None:
            print(f"{run.folder}: no trial has reported {metric} yet ({run.status})")
            return
        params = format_params({k: v for k, v in best.sampled.items() if k != "model_name"})
        print(f"best trial {best.trial_id}: {best.parameters.get('model_name', '')}, {metric} {best.best_metric:.4f} "
              f"at epoch {best.best_epoch} of {best.epochs} ({best.status})")
        if params:
            print(f"  sampled: {params}")
        print(f"  model: {run.best_model_path or 'not written yet'}")

    def _do_stop(self, args) -> None:
        run = self._run(args.run)
        if args.trial is None:
            if not run.running:
                raise AutoMLError(f"run {str(run.folder)!r} is not driven from this kernel ({run.status}); "
                                  "nothing to stop here")
            run.cancel()
            print(f"{run.folder}: canceling; running trials stop at their next evaluation "
                  "(%automl resume continues them)")
            return
        run.stop_trial(args.trial)
        print(f"{run.folder}: trial {args.trial} stops at its next evaluation")

    # -- steering: each is a request the driver applies (docs/steering.md) ----------------
    def _do_extend(self, args) -> None:
        run = self._run(args.run)
        _said(run, run.extend_trial(args.trial, args.epochs), f"extend trial {args.trial} by {args.epochs} epochs")

    def _do_clone(self, args) -> None:
        run = self._run(args.run)
        edits = key_values(args.edits, "clone")
        _said(run, run.clone_trial(args.trial, **edits), f"clone trial {args.trial}")

    def _do_requeue(self, args) -> None:
        run = self._run(args.run)
        _said(run, run.requeue(args.trials or None), f"requeue {' '.join(args.trials) or 'every Failed trial'}")

    def _do_limits(self, args) -> None:
        run = self._run(args.run)
        from automl_nb.spec.limits import LIMIT_KEYS

        changes = key_values(args.limits, "limits")
        unknown = [key for key in changes if key not in LIMIT_KEYS]
        if unknown:
            raise UsageError(f"%automl limits: {unknown[0]!r} is not a limit; allowed: {', '.join(LIMIT_KEYS)}")
        _said(run, run.set_limits(**changes), "limits " + " ".join(args.limits))

    def _do_narrow(self, args) -> None:
        text = getattr(args, "cell", None)
        if (text is None) == (args.file is None):
            raise UsageError("%automl narrow: give the search space as the cell of %%automl narrow, or -f FILE "
                             "(one of them)")
        if args.file is not None:
            path = Path(os.path.expanduser(args.file))
            if not path.is_file():
                raise AutoMLError(f"-f {args.file!r}: no such file; allowed: a YAML file holding the search space")
            text = path.read_text(encoding="utf-8")
        run = self._run(args.run)
        _said(run, run.narrow_space(text), "narrow the search space")

    def _do_resume(self, args):
        from automl_nb.sweep import load_run

        _check_variable_name(args.out)
        return self._adopt(load_run(os.path.expanduser(args.folder)).resume(cluster=args.cluster), args)

    def _adopt(self, run, args):
        """Make ``run`` the kernel's current run, bind it to ``-o NAME``, and show its dashboard
        (or return it with ``--no-dashboard``)."""
        self.current_run = run
        if args.out:
            self.shell.user_ns[args.out] = run
        if args.no_dashboard:
            return run
        self._dashboard(run)
        return None

    def _do_dashboard(self, args) -> None:
        run = self._run(args.run)
        self.current_run = run
        self._dashboard(run)

    def _do_wait(self, args) -> None:
        run = self._run(args.run)
        print(f"{run.folder}: {run.wait(args.timeout)}")  # widget clicks are handled meanwhile

    def _do_cluster(self, args) -> None:
        run = self._run(args.run)
        client = run.client
        if client is None:
            print(f"{run.folder}: not driven from this kernel ({run.status}), so no cluster to show; "
                  "a sweep's cluster lives while the sweep runs")
            return
        for line in cluster_lines(client):
            print(line)

    def _do_show(self, args) -> None:
        from IPython.display import Image, display

        run = self._run(args.run)
        images = _expand(args.images)
        predictor, trial_id = self._predictor(run, args.trial, threshold=args.threshold)
        predictions = predictor.predict(images)
        from automl_nb.magics.show import draw_predictions

        picture, lines = draw_predictions(images, predictions, predictor)
        print(f"trial {trial_id} ({predictor.task}):")
        for line in lines:
            print(f"  {line}")
        display(Image(data=picture, format="png"))

    def _do_explain(self, args) -> None:
        from IPython.display import display

        from automl_nb.explain import Explainer

        run = self._run(args.run)
        predictor, trial_id = self._predictor(run, args.trial)
        explainer = Explainer.from_predictor(predictor)
        for image in _expand(args.images):
            explanations = ([explainer.explain(image, args.method, args.label)] if args.label is not None
                            else explainer.explain_predicted(image, args.method))
            print(f"trial {trial_id}, {image}: " + (", ".join(f"{e.label} ({e.score:.2f})" for e in explanations)
                                                    or "no label reaches the threshold"))
            for explanation in explanations:
                display(explanation)

    def _do_export(self, args) -> None:
        """Export a trial's model to ONNX and print the parity check; ``-o`` binds the ExportResult."""
        _check_variable_name(args.out)
        result = self._run(args.run).export(args.trial, args.output, exporter=args.exporter,
                                            batch_size=args.batch_size)
        print("\n".join(result.lines()))
        if args.out:
            self.shell.user_ns[args.out] = result

    def _do_replay(self, args):
        """Replay the run under another policy and show the result; ``-o`` binds the ReplayResult."""
        from automl_nb.sweep.replay import replay_from_text

        _check_variable_name(args.out)
        result = replay_from_text(self._run(args.run), " ".join(args.policy), max_concurrent=args.concurrent)
        if args.out:
            self.shell.user_ns[args.out] = result
        return result

    def _do_check(self, args) -> None:
        """Show the data-health report of a job (a YAML file or a job variable); ``-o`` binds it."""
        from IPython.display import display

        from automl_nb.data.health import check
        from automl_nb.spec import ImageJob
        from automl_nb.widgets.data_health import DataHealthPanel

        _check_variable_name(args.out)
        if (args.job is None) == (args.job_variable is None):
            raise UsageError("%automl check: give the job's YAML file or -j JOB_VARIABLE (one of them)")
        if args.job_variable is not None:
            job = self.shell.user_ns.get(args.job_variable)
            if not isinstance(job, ImageJob):
                found = type(job).__name__ if args.job_variable in self.shell.user_ns else "no such variable"
                raise AutoMLError(f"-j {args.job_variable!r} is not a job variable of this notebook ({found}); "
                                  "bind one with %%automl --dry-run -o NAME")
        else:
            job = Path(os.path.expanduser(args.job))
            if not job.is_file():
                raise AutoMLError(f"{args.job}: no such job file; allowed: the path of a job's YAML file")
        health = check(job)
        if args.out:
            self.shell.user_ns[args.out] = health
        display(DataHealthPanel(health))

    def _do_diff(self, args) -> None:
        """Show where two trials disagree most (PredictionDiff, from the run folder); ``--html`` also
        saves its static page; ``-o`` binds the gallery."""
        from IPython.display import display

        from automl_nb.widgets.diff_gallery import PredictionDiff

        _check_variable_name(args.out)
        gallery = PredictionDiff(self._run(args.run), trials=[args.a, args.b], limit=args.limit)
        if args.html:
            print(f"saved {gallery.save_html(os.path.expanduser(args.html))}")
        if args.out:
            self.shell.user_ns[args.out] = gallery
        display(gallery)

    def _do_errors(self, args) -> None:
        """Show one trial's error analysis (the best trial's by default, from the run folder); ``-o`` binds it."""
        from IPython.display import display

        from automl_nb.widgets.error_analysis import ErrorAnalysis

        _check_variable_name(args.out)
        panel = ErrorAnalysis(self._run(args.run), args.trial, limit=args.limit)
        if args.out:
            self.shell.user_ns[args.out] = panel
        display(panel)

    def _predictor(self, run, trial_id: str | None, threshold: float | None = None):
        """The trial's Predictor (the best trial's by default), kept while its model file is unchanged."""
        from automl_nb.infer import Predictor
        from automl_nb.train.folder import TrialFolder

        if trial_id is None:
            best = run.best_trial
            if best is None or run.best_model_path is None:
                raise AutoMLError(f"{run.folder}: no trained model yet ({run.status}); wait for a trial's first "
                                  "evaluation")
            trial_id = best.trial_id
        folder = run.store.trial_folder(str(trial_id))
        model_file = TrialFolder(folder).best_checkpoint
        stamp = model_file.stat().st_mtime_ns if model_file.exists() else None
        key = (str(folder), stamp, threshold)
        if key not in self._predictors:
            settings = {"box_score_threshold": threshold} if threshold is not None else {}
            self._predictors = {key: Predictor.from_trial(folder, **settings)}  # keep one: models are large
        return self._predictors[key], str(trial_id)


# %automl? and %%automl? show the parsers' help, so the options are written once (parsers.py).
AutoMLMagics.automl.__doc__ = magic_help()


def cluster_lines(client) -> list[str]:
    """Text lines about a Dask cluster: scheduler, dashboard link, then one line per worker."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    lines = [f"scheduler: {info.get('address', client.scheduler.address)}"]
    if "dashboard" in info.get("services", {}):
        import importlib.util

        needs = "" if importlib.util.find_spec("bokeh") else " (its pages need bokeh on the scheduler's machine)"
        lines.append(f"dashboard: {client.dashboard_link}{needs}")
    else:
        lines.append("dashboard: none (the Dask dashboard needs bokeh; `pip install bokeh` and a cluster started "
                     "with a dashboard address)")
    processing = client.processing()
    lines.append(f"workers: {len(workers)}")
    for address, worker in sorted(workers.items(), key=lambda item: str(item[1].get("name"))):
        tasks = [_trial_of(key) for key in processing.get(address, ())]
        memory = worker.get("memory_limit") or 0
        resources = ", ".join(f"{k}={v:g}" for k, v in worker.get("resources", {}).items())
        lines.append(f"  {worker.get('name')}: {address}, {worker.get('nthreads')} thread(s), "
                     f"{memory / 2**30:.1f} GiB{', ' + resources if resources else ''}; "
                     f"running: {', '.join(tasks) or 'nothing'}")
    return lines


def _trial_of(key: Any) -> str:
    """``trial 3`` for a sweep task's key (``automl-trial-<session>-<trial>-<nonce>``), else the key."""
    text = str(key)
    parts = text.split("-")
    if text.startswith("automl-trial-") and len(parts) >= 5:
        return f"trial {parts[3]}"
    return text


def _said(run, request_id: str, what: str) -> None:
    """Tell when a logged steering request takes effect."""
    from automl_nb.sweep.steering import request_logged

    print(request_logged(run, request_id, what, "%automl resume"))


def _expand(patterns: list[str]) -> list[str]:
    """Image arguments with globs expanded (a pattern matching nothing is an error)."""
    images = []
    for pattern in patterns:
        if any(char in pattern for char in "*?[") and "://" not in pattern:
            matches = sorted(glob.glob(os.path.expanduser(pattern)))
            if not matches:
                raise AutoMLError(f"{pattern!r}: no image matches")
            images += matches
        else:
            images.append(pattern)
    return images


def _default_folder(job) -> Path:
    from automl_nb.sweep.run import DEFAULT_RUNS_FOLDER
    from automl_nb.sweep.store import free_folder

    return free_folder(DEFAULT_RUNS_FOLDER / (job.name or job.task))


def _check_variable_name(name: str | None) -> None:
    if name is not None and not name.isidentifier():
        raise UsageError(f"-o: {name!r} is not a Python variable name")
