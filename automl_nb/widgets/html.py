"""HTML for the sweep panels: the live leaderboard's cells and the static form of the dashboard.

The static form (a table and the learning curves as an inline PNG) is what an executed
notebook shows where no kernel runs, e.g. on nbviewer or GitHub.

Colours are JupyterLab's theme variables (so the light and the dark theme both read well),
each with the light theme's value as a fallback for pages outside JupyterLab.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Sequence

from automl_nb.widgets.figures import trial_colour
from automl_nb.widgets.leaderboard import (
    MODEL, job_eta, parameter_columns, sort_rows, starting, trial_eta, trial_values,
)
from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

MUTED = "var(--jp-ui-font-color2, #616161)"
BEST_BACKGROUND = "var(--jp-layout-color2, #eeeeee)"
BEST_EDGE = "var(--jp-success-color1, #2a7d46)"
_STATUS_COLOURS = {"Completed": "var(--jp-success-color1, #2a7d46)", "Running": "var(--jp-brand-color1, #1f5fa8)",
                   "Queued": MUTED, "Failed": "var(--jp-error-color1, #b3261e)",
                   "Canceled": "var(--jp-warn-color1, #9a6700)"}
# Column widths of the live leaderboard (px); a hyperparameter column each between trial and metric.
TRIAL_WIDTH, PARAM_WIDTH = 86, 96
TAIL_COLUMNS = (("metric", 70), ("status", 220), ("time", 44), ("left", 44))
# A failed trial's reason on its row: what fits the status column, about; the tooltip has it all.
FAILURE_LIMIT = 52
BEST_MARKER = "★ best"
# The live dashboard's style sheet: theme colours for what widgets draw, and rows that wrap.
DASHBOARD_CSS = f"""<style>
.automl-dashboard .automl-best {{background: {BEST_BACKGROUND}; box-shadow: inset 3px 0 0 {BEST_EDGE};}}
.automl-dashboard .automl-sort {{background: {BEST_BACKGROUND}; color: var(--jp-ui-font-color1, #1f1f1f);
  font-weight: bold; padding: 0 4px; margin: 0; text-align: left;}}
.automl-dashboard .automl-sorted {{box-shadow: inset 0 -2px 0 var(--jp-brand-color1, #1f5fa8);}}
.automl-dashboard .automl-selected {{outline: 2px solid var(--jp-brand-color1, #1f5fa8); outline-offset: -2px;}}
</style>"""


class StaticHtml:
    """A panel (an ipywidgets box) whose static form, :meth:`to_html`, is saved in the notebook
    beside its live view: what nbviewer, GitHub or a kernel-less reader shows."""

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.to_html()
        return bundle

    def _repr_html_(self) -> str:
        return self.to_html()


def format_value(value) -> str:
    """A parameter value, short: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict) -> str:
    """``learning_rate=0.0123, optimizer=adam`` (empty for a trial that sampled nothing)."""
    return ", ".join(f"{key}={format_value(value)}" for key, value in params.items())


def format_metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def status_text(row: TrialRow) -> str:
    """The trial's status with why it was canceled or failed, one line: ``Canceled (policy)``,
    ``Canceled (by user)``, ``Failed: ValueError: ...`` (cut; the notes hold the whole error)..."""
    if row.status == "Failed" and row.failure:
        from automl_nb.sweep.failures import one_line  # here: importing this module stays light

        return f"Failed: {one_line(row.failure, FAILURE_LIMIT)}"
    if row.status != "Canceled":
        return row.status
    why = {"policy": "policy", "timeout": "timeout", "user": "by user"}.get(row.stopped_by or "", "")
    if why == "policy" and "stopped by the user" in row.notes:  # a trial stopped with its own Stop button
        why = "by user"
    reason = stop_reason(row) if why == "policy" else ""
    if reason:  # the verdict beside the row: the rule and the numbers it compared (the tooltip has it all)
        from automl_nb.sweep.failures import one_line

        return f"Canceled: {one_line(reason, FAILURE_LIMIT)}"
    return f"Canceled ({why})" if why else "Canceled"


def stop_reason(row: TrialRow) -> str:
    """The early-termination policy's reason for stopping the trial, from its notes ("" for none),
    e.g. ``bandit: 0.410 < 0.800/(1+0.2)=0.667 at report 4``."""
    from automl_nb.sweep.policies import POLICY_NOTE

    for note in row.notes.split("; "):
        if note.startswith(POLICY_NOTE):
            return note[len(POLICY_NOTE):]
    return ""


def epochs_text(row: TrialRow) -> str:
    return f"{row.epochs}/{row.total_epochs}" if row.total_epochs else str(row.epochs)


def column_label(key: str, primary_metric: str) -> str:
    """A column's header: the primary metric's name for ``metric``, ``model`` for ``model_name``."""
    return {"metric": primary_metric, MODEL: "model"}.get(key, key)


def cell_columns(swept: Sequence[str]) -> list[tuple[str, int]]:
    """The live leaderboard's text columns and their widths: trial, one per swept
    hyperparameter, metric, status, time, time left."""
    return [("trial", TRIAL_WIDTH)] + [(name, PARAM_WIDTH) for name in swept] + list(TAIL_COLUMNS)


def cells_width(swept: Sequence[str]) -> int:
    return sum(width for _, width in cell_columns(swept))


def swatch(trial_id: str) -> str:
    """A square in the trial's colour, the one its curves have (see ``trial_colour``)."""
    return (f'<span class="automl-swatch" style="display:inline-block;width:10px;height:10px;margin-right:4px;'
            f'border-radius:2px;vertical-align:middle;background:{trial_colour(trial_id)}"></span>')


def _cell(text: str, width: int, title: str = "", column: str = "") -> str:
    title_attr = f' title="{escape(title)}"' if title else ""
    # The column's class lets a page (and the browser test) find a row's value.
    return (f'<span class="automl-cell automl-col-{escape(column)}" style="flex:none;width:{width}px;'
            f'overflow:hidden;text-overflow:ellipsis;white-space:nowrap"{title_attr}>{text}</span>')


def _row(cells: str, best: bool = False) -> str:
    # A flex row that wraps: in a narrow window the cells go on the next line instead of being cut.
    style = f"background:{BEST_BACKGROUND};font-weight:bold;" if best else ""
    return f'<div style="display:flex;flex-wrap:wrap;align-items:center;line-height:22px;{style}">{cells}</div>'


def header_cells(primary_metric: str, swept: Sequence[str]) -> str:
    """The leaderboard's header as HTML (same widths as :func:`row_cells`; the live one uses
    buttons of these widths instead, to sort)."""
    return _row("".join(_cell(f"<b>{escape(column_label(name, primary_metric))}</b>", width, name, name)
                        for name, width in cell_columns(swept)))


def row_cells(row: TrialRow, best: bool, swept: Sequence[str]) -> str:
    """One live leaderboard row: a swatch, the trial, its swept hyperparameters, metric,
    status (with a failure's reason), time and time left. The progress bar and Stop button
    are widgets beside it."""
    colour = _STATUS_COLOURS.get(row.status, "inherit")
    marker = f' <span class="automl-best-marker" style="color:{BEST_EDGE}">{BEST_MARKER}</span>' if best else ""
    values = trial_values(row)
    cells = [_cell(swatch(row.trial_id) + escape(row.trial_id) + marker, TRIAL_WIDTH, column="trial")]
    for name in swept:
        shown = format_value(values[name]) if name in values else ""
        cells.append(_cell(escape(shown), PARAM_WIDTH, f"{name}={values[name]}" if name in values else "", name))
    eta = trial_eta(row)
    tail = {
        "metric": (format_metric(row.metric), ""),
        "status": (f'<span class="automl-status" style="color:{colour}">{escape(status_text(row))}</span>', row.notes),
        "time": (format_seconds(row.duration_s), "time so far" if row.active else "time taken"),
        "left": (format_seconds(eta), "time left, about, at its pace so far" if eta is not None else ""),
    }
    cells += [_cell(tail[name][0], width, tail[name][1], name) for name, width in TAIL_COLUMNS]
    return _row("".join(cells), best)


def caption_text(constant: dict) -> str:
    """The hyperparameters every trial shares, one line: ``same in every trial: model resnet18,
    optimizer sgd`` (empty when there are none)."""
    if not constant:
        return ""
    shared = ", ".join(f"{column_label(name, '')} {format_value(value)}" for name, value in constant.items())
    return f"same in every trial: {shared}"


def summary_text(snapshot: RunSnapshot) -> str:
    """One line: folder, task, status, trials ended, best so far (or that the workers are
    starting), elapsed time and, while it runs, about how long it has left."""
    best = snapshot.best
    if best:
        best_text = f"best {snapshot.primary_metric} {best.metric:.4f} (trial {best.trial_id}, {best.model})"
    elif starting(snapshot):
        best_text = "starting workers"
    else:
        best_text = f"no {snapshot.primary_metric} yet"
    running = sum(1 for row in snapshot.rows if row.status == "Running")
    eta = job_eta(snapshot)
    left = f", about {format_seconds(eta)} left" if eta is not None else ""
    return (f"{snapshot.folder}: {snapshot.task}, {snapshot.status}; {snapshot.ended_trials}/{snapshot.max_trials} "
            f"trials ended, {running} running; {best_text}; {format_seconds(snapshot.elapsed_s) or '0:00'} elapsed"
            f"{left}")


def leaderboard_table(snapshot: RunSnapshot, order: Sequence[str] | None = None) -> str:
    """The leaderboard as an HTML table: a caption with the hyperparameters every trial shares,
    a column per swept one, the best row marked.

    Args:
        snapshot: the sweep.
        order: trial ids in the order to list them (default: trial order).
    """
    columns = parameter_columns(snapshot.rows, snapshot.swept)
    head = (["", "trial"] + [column_label(name, "") for name in columns.swept]
            + [snapshot.primary_metric, "status", "epochs", "time", "notes"])
    caption = caption_text(columns.constant)
    lines = ['<table class="automl-leaderboard" style="border-collapse:collapse;font-size:12px">']
    if caption:
        lines.append(f'<caption class="automl-caption" style="text-align:left;color:{MUTED}">{escape(caption)}'
                     "</caption>")
    lines.append("<thead><tr>" + "".join(f'<th style="text-align:left;padding:2px 8px">{escape(h)}</th>' for h in head)
                 + "</tr></thead><tbody>")
    best = snapshot.best.trial_id if snapshot.best else None
    by_id = {row.trial_id: row for row in snapshot.rows}
    rows = [by_id[trial_id] for trial_id in order if trial_id in by_id] if order else sort_rows(snapshot.rows, "trial")
    for row in rows:
        mark = row.trial_id == best
        style = f' style="background:{BEST_BACKGROUND};font-weight:bold"' if mark else ""
        values = trial_values(row)
        colour = _STATUS_COLOURS.get(row.status, "inherit")
        cells = ([row.trial_id + (f" {BEST_MARKER}" if mark else "")]
                 + [format_value(values[name]) if name in values else "" for name in columns.swept]
                 + [format_metric(row.metric)])
        tail = [epochs_text(row), format_seconds(row.duration_s), row.notes]
        lines.append(f'<tr class="automl-row"{style}><td style="padding:2px 8px">{swatch(row.trial_id)}</td>'
                     + "".join(f'<td style="padding:2px 8px">{escape(c)}</td>' for c in cells)
                     + f'<td style="padding:2px 8px;color:{colour}">{escape(status_text(row))}</td>'
                     + "".join(f'<td style="padding:2px 8px">{escape(c)}</td>' for c in tail) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def png_img(png: bytes | None, alt: str) -> str:
    """An ``<img>`` with the PNG inline (a data URI), or nothing."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" style="max-width:100%" src="data:image/png;base64,{data}"/>'


def static_dashboard(snapshot: RunSnapshot, curves: bytes | None, order: Sequence[str] | None = None) -> str:
    """The whole dashboard as static HTML: summary, leaderboard table, learning curves."""
    return (f'<div class="automl-dashboard-static"><p>{escape(summary_text(snapshot))}</p>'
            f"{leaderboard_table(snapshot, order)}{png_img(curves, 'learning curves')}</div>")
