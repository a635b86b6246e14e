"""HTML for the sweep panels: the live leaderboard's cells and the static form of the dashboard.

The static form (a table and the learning curves as an inline PNG) is what an executed
notebook shows where no kernel runs, e.g. on nbviewer or GitHub.
"""

from __future__ import annotations

import base64
from html import escape

from automl_nb.widgets.snapshot import RunSnapshot, TrialRow

BEST_BACKGROUND = "#e3f4ea"
# Column widths of the live leaderboard (px); its rows are HBoxes, so cells are fixed-width spans.
COLUMNS = (("trial", 44), ("model", 120), ("params", 200), ("metric", 70), ("status", 250), ("time", 44))
ROW_WIDTH = sum(width for _, width in COLUMNS) + 8
# A failed trial's reason on its row: what fits the status column, about; the tooltip has it all.
FAILURE_LIMIT = 60
_STATUS_COLOURS = {"Completed": "#2a7d46", "Running": "#1f5fa8", "Queued": "#777777", "Failed": "#b3261e",
                   "Canceled": "#9a6700"}


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
    return f"Canceled ({why})" if why else "Canceled"


def epochs_text(row: TrialRow) -> str:
    return f"{row.epochs}/{row.total_epochs}" if row.total_epochs else str(row.epochs)


def _cell(text: str, width: int, title: str = "", style: str = "") -> str:
    title_attr = f' title="{escape(title)}"' if title else ""
    return (f'<span class="automl-cell" style="display:inline-block;width:{width}px;overflow:hidden;'
            f'text-overflow:ellipsis;white-space:nowrap;vertical-align:middle;{style}"{title_attr}>{text}</span>')


def header_cells(primary_metric: str) -> str:
    """The live leaderboard's header row (same widths as :func:`row_cells`)."""
    names = {"metric": primary_metric, "time": "time"}
    return _row("".join(_cell(f"<b>{escape(names.get(name, name))}</b>", width) for name, width in COLUMNS))


def row_cells(row: TrialRow, best: bool) -> str:
    """One live leaderboard row (the progress bar and Stop button are widgets beside it)."""
    weight = "font-weight:bold;" if best else ""
    colour = _STATUS_COLOURS.get(row.status, "#333333")
    values = {
        "trial": (escape(row.trial_id) + (" ★" if best else ""), ""),
        "model": (escape(row.model), row.model),
        "params": (escape(format_params(row.params)), format_params(row.params)),
        "metric": (format_metric(row.metric), ""),
        "status": (f'<span style="color:{colour}">{escape(status_text(row))}</span>', row.notes),
        "time": (format_seconds(row.duration_s), ""),
    }
    return _row("".join(_cell(values[name][0], width, values[name][1], weight) for name, width in COLUMNS))


def _row(cells: str) -> str:
    return f'<div style="white-space:nowrap">{cells}</div>'



def summary_text(snapshot: RunSnapshot) -> str:
    """One line: folder, task, status, trials ended, best so far, elapsed time."""
    best = snapshot.best
    best_text = (f"best {snapshot.primary_metric} {best.metric:.4f} (trial {best.trial_id}, {best.model})"
                 if best else f"no {snapshot.primary_metric} yet")
    running = sum(1 for row in snapshot.rows if row.status == "Running")
    return (f"{snapshot.folder}: {snapshot.task}, {snapshot.status}; {snapshot.ended_trials}/{snapshot.max_trials} "
            f"trials ended, {running} running; {best_text}; {format_seconds(snapshot.elapsed_s) or '0:00'} elapsed")


def leaderboard_table(snapshot: RunSnapshot) -> str:
    """The leaderboard as an HTML table, best row highlighted."""
    head = ["trial", "model", "params", snapshot.primary_metric, "status", "epochs", "time", "notes"]
    lines = ['<table class="automl-leaderboard" style="border-collapse:collapse;font-size:12px">',
             "<thead><tr>" + "".join(f'<th style="text-align:left;padding:2px 8px">{escape(h)}</th>' for h in head)
             + "</tr></thead><tbody>"]
    best = snapshot.best.trial_id if snapshot.best else None
    for row in snapshot.rows:
        style = f' style="background:{BEST_BACKGROUND};font-weight:bold"' if row.trial_id == best else ""
        cells = [row.trial_id, row.model, format_params(row.params), format_metric(row.metric), status_text(row),
                 epochs_text(row), format_seconds(row.duration_s), row.notes]
        lines.append(f'<tr class="automl-row"{style}>'
                     + "".join(f'<td style="padding:2px 8px">{escape(c)}</td>' for c in cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def png_img(png: bytes | None, alt: str) -> str:
    """An ``<img>`` with the PNG inline (a data URI), or nothing."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" style="max-width:100%" src="data:image/png;base64,{data}"/>'


def static_dashboard(snapshot: RunSnapshot, curves: bytes | None) -> str:
    """The whole dashboard as static HTML: summary, leaderboard table, learning curves."""
    return (f'<div class="automl-dashboard-static"><p>{escape(summary_text(snapshot))}</p>'
            f"{leaderboard_table(snapshot)}{png_img(curves, 'learning curves')}</div>")
