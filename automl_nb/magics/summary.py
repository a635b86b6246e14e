"""The resolved job, as ``%%automl`` shows it before submitting (and ``--dry-run`` stops at)."""

from __future__ import annotations

from html import escape
from pathlib import Path


class JobSummary:
    """What a job will do: task, run mode, trials, sampling, models, data, run folder, full YAML,
    and how long it will take (see :mod:`automl_nb.sweep.estimate`).

    For a single trial, every training parameter with its default filled in is listed too.

    Args:
        job: a validated job.
        folder: the run folder it will write (None for a dry run).
        cluster: the scheduler address given with the cell (``--cluster``), overriding the job's.
        expanded: show the YAML and parameters open (a dry run), else folded.
        estimate: True to time the sweep's configurations now (seconds, cached per machine), a
            :class:`~automl_nb.sweep.estimate.SweepEstimate` to show, or False/None for none.

    Example:
        >>> JobSummary(load_job("job.yml"), estimate=True)
    """

    def __init__(self, job, folder: str | Path | None = None, cluster: str | None = None,
                 expanded: bool = False, estimate=None) -> None:
        self.job, self.folder, self.cluster, self.expanded = job, folder, cluster, expanded
        if estimate is True:
            from automl_nb.sweep.estimate import estimate_sweep

            estimate = estimate_sweep(job, cluster=cluster, announce=print)
        self.estimate = estimate or None

    def lines(self) -> list[str]:
        """The summary as short lines of text."""
        job = self.job
        limits = job.limits
        mode = {"single": "single trial", "automode": "AutoMode sweep", "sweep": "sweep"}[job.run_mode]
        lines = [f"{job.task}: {mode}, {limits.max_trials} trial(s), {limits.max_concurrent_trials} at a time, "
                 f"timeout {limits.timeout_minutes} min; primary metric {job.primary_metric}"]
        if job.run_mode == "sweep":
            policy = job.sweep.early_termination
            lines.append(f"sampling {job.sweep.sampling_algorithm} over {len(job.search_space)} subspace(s), models "
                         f"{', '.join(self.models())}; early termination: "
                         f"{_policy_text(policy) if policy else 'none'}")
        elif job.run_mode == "automode":
            lines.append("AutoMode picks the models and learning rates (no search space given)")
        else:
            lines.append(f"model {self.models()[0]}")
        for key in ("training_data", "validation_data"):
            value = getattr(job, key)
            if value is not None:
                lines.append(f"{key}: {job.resolve_data_path(value)} ({value.type})")
        if job.validation_data is None:
            lines.append(f"validation: {job.effective_validation_data_size():g} of the training data held out")
        cluster = self.cluster or job.scheduler_address()
        lines.append(f"cluster: {cluster}" if cluster else "cluster: a local Dask cluster")
        if self.folder is not None:
            lines.append(f"run folder: {self.folder}")
        if self.estimate is not None:
            lines += self.estimate.lines()
        return lines

    def models(self) -> list[str]:
        from automl_nb.spec import DEFAULT_MODEL
        from automl_nb.spec.search_space import subspace_models

        job = self.job
        if job.search_space:
            models = [m for s in job.search_space for m in subspace_models(job.task, s, job.training_parameters)]
            return list(dict.fromkeys(models))
        return [job.training_parameters.get("model_name") or DEFAULT_MODEL[job.task]]

    def resolved_parameters(self) -> dict | None:
        """Every parameter of a single trial (defaults filled in); None for a sweep."""
        if self.job.run_mode != "single":
            return None
        return self.job.resolved_training_parameters()

    def __repr__(self) -> str:
        text = "\n".join(self.lines())
        if self.expanded:
            text += "\n\n" + self.job.dump()
        return text

    def _repr_html_(self) -> str:
        lines = self.lines()
        if self.estimate is not None:
            lines = lines[:len(lines) - len(self.estimate.lines())]  # drawn as its own table below
        items = "".join(f"<li>{escape(line)}</li>" for line in lines[1:])
        open_attr = " open" if self.expanded else ""
        html = (f'<div class="automl-job-summary"><b>{escape(lines[0])}</b><ul>{items}</ul>'
                + (self.estimate._repr_html_() if self.estimate is not None else "")
                + f"<details{open_attr}><summary>job YAML</summary><pre>{escape(self.job.dump())}</pre></details>")
        resolved = self.resolved_parameters()
        if resolved:
            rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(repr(v))}</td></tr>" for k, v in resolved.items())
            html += (f"<details{open_attr}><summary>training parameters with defaults</summary>"
                     f'<table style="font-size:12px">{rows}</table></details>')
        return html + "</div>"


def _policy_text(policy) -> str:
    fields = ", ".join(f"{k}={v}" for k, v in policy.to_dict().items() if k != "type")
    return f"{policy.type} ({fields})"
