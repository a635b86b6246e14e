"""LabelAudit: the label audit's findings, one card each, to keep, fix or drop.

Each card shows the image (a missing box drawn in its class's colour, a spurious one dashed
white, a wrong class written below), what is on file, what the trials agree on and how sure
they are. "write corrected file" writes ``<stem>.audited.jsonl`` next to each labels file
with a decision and logs the decisions (see :mod:`automl_nb.analysis.corrections`); the
original file is never written. It works from the run folder alone: the validation findings
come from each trial's ``predictions.jsonl``, the training ones from the audit's cache.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from automl_nb.widgets.drawing import caption, draw_objects, fit, png_bytes
from automl_nb.widgets.html import StaticHtml, png_img

CARD_SIDE, CARD_ZOOM = 224, 4  # a 64 px image at 224 px, pixels kept sharp
PAGE = 12                       # cards shown at a time
UNDECIDED = "undecided"


def finding_png(finding: Any, classes: list[str]) -> bytes:
    """The image of one finding (a row of ``AuditFindings.frame``), its box or labels drawn."""
    from automl_nb.analysis.audit import MISSING_BOX, SPURIOUS_BOX
    from automl_nb.data.images import open_image

    image = fit(open_image(finding["image"]), CARD_SIDE, CARD_ZOOM)
    if finding["kind"] == MISSING_BOX:
        entry = {"label": finding["agreed"], "box": finding["box"], "score": finding["confidence"],
                 "polygon": finding["polygon"]}
        image = draw_objects(image, [entry], classes)
    elif finding["kind"] == SPURIOUS_BOX:
        image = draw_objects(image, [{"label": finding["label"], "box": finding["box"]}], classes, truth=True)
    else:
        image = caption(image, [f"on file: {_words(finding['label'])}",
                                f"trials: {_words(finding['agreed'])} ({finding['confidence']:.2f})"])
    return png_bytes(image)


def describe(finding: Any) -> str:
    """One line of HTML: what was found, where, and how sure the trials are."""
    what = {"wrong_label": f"on file <b>{escape(_words(finding['label']))}</b>, the trials agree on "
                           f"<b>{escape(_words(finding['agreed']))}</b>",
            "missing_box": f"a <b>{escape(str(finding['agreed']))}</b> the trials all find has no box on file",
            "spurious_box": f"no trial finds the <b>{escape(str(finding['label']))}</b> box on file"}[finding["kind"]]
    return (f"{escape(finding['kind'])}: {what} (mean confidence {finding['confidence']:.2f}); "
            f"{escape(Path(str(finding['image'])).name)}, {escape(str(finding['split']))} image")


def _words(label: Any) -> str:
    if label is None:
        return "-"
    return label if isinstance(label, str) else ", ".join(label) or "(no tags)"


class LabelAudit(StaticHtml, widgets.VBox):
    """The findings of :func:`~automl_nb.analysis.audit.audit_labels`, to keep, fix or drop.

    Args:
        run: a :class:`~automl_nb.sweep.Run` or its folder.
        findings: findings already made; default: ``audit_labels(run, **options)``.
        **options: for :func:`~automl_nb.analysis.audit.audit_labels` (``trials``,
            ``confidence``, ``include_training``).

    Attributes:
        findings: the :class:`~automl_nb.analysis.audit.AuditFindings`.
        decisions: finding number -> ``keep``, ``fix`` or ``drop`` (those decided).

    Raises:
        AutoMLError: the run has fewer than two trials with a metric (see ``audit_labels``).

    Example:
        >>> LabelAudit(run)                # or LabelAudit("runs/shapes", confidence=0.8)
    """

    def __init__(self, run: Any, *, findings: Any = None, **options: Any) -> None:
        from automl_nb.analysis.audit import audit_labels
        from automl_nb.sweep.run import as_run
        from automl_nb.train.folder import LABELS, TrialFolder

        run = as_run(run)
        self.findings = findings if findings is not None else audit_labels(run, **options)
        trials = self.findings.trials
        self.classes = TrialFolder(run.store.trial_folder(trials[0])).read_json(LABELS) if trials else []
        self.decisions: dict[int, str] = {}
        self.page = 0
        self.cards = widgets.VBox()
        self.previous = widgets.Button(description="previous", icon="arrow-left")
        self.next = widgets.Button(description="next", icon="arrow-right")
        self.where = widgets.HTML()
        self.write = widgets.Button(description="write corrected file", button_style="primary", icon="save")
        self.message = widgets.HTML()
        self.previous.on_click(lambda _: self.show(self.page - 1))
        self.next.on_click(lambda _: self.show(self.page + 1))
        self.write.on_click(lambda _: self.write_corrected())
        self.header = widgets.HTML(self._summary())
        pager = widgets.HBox([self.previous, self.where, self.next, self.write])
        super().__init__([self.header, pager, self.cards, self.message])
        self.show(0)

    def _summary(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in self.findings.counts().items()) or "none"
        return (f"<b>Label audit</b> of trials {escape(', '.join(self.findings.trials))} "
                f"(confidence {self.findings.confidence}): {len(self.findings)} findings ({escape(counts)})")

    def show(self, page: int) -> None:
        """Show the cards of ``page`` (0-based, :data:`PAGE` findings a page)."""
        pages = max(1, -(-len(self.findings) // PAGE))
        self.page = min(max(page, 0), pages - 1)
        numbers = range(self.page * PAGE, min(len(self.findings), (self.page + 1) * PAGE))
        self.cards.children = [self._card(number) for number in numbers]
        self.where.value = f"page {self.page + 1} of {pages}"
        self.previous.disabled, self.next.disabled = self.page == 0, self.page == pages - 1

    def _card(self, number: int) -> widgets.Widget:
        finding = self.findings.frame.loc[number]
        picture = widgets.Image(value=finding_png(finding, self.classes), format="png")
        choice = widgets.ToggleButtons(options=[UNDECIDED, "keep", "fix", "drop"],
                                       value=self.decisions.get(number, UNDECIDED), style={"button_width": "80px"})
        choice.observe(lambda change: self.decide(number, change["new"]), names="value")
        return widgets.HBox([picture, widgets.VBox([widgets.HTML(describe(finding)), choice])])

    def decide(self, number: int, decision: str) -> None:
        """Record a decision on finding ``number`` (``undecided`` forgets it)."""
        if decision == UNDECIDED:
            self.decisions.pop(number, None)
        else:
            self.decisions[number] = decision

    def write_corrected(self) -> list[Path]:
        """Write the corrected labels files and the log (see
        :func:`~automl_nb.analysis.corrections.write_corrected`); the outcome shows in the panel."""
        from automl_nb.analysis.corrections import LOG_SUFFIX, write_corrected

        if not self.decisions:
            self.message.value = "Decide on some findings first (keep, fix or drop)."
            return []
        try:
            written = write_corrected(self.findings, self.decisions)
        except Exception as error:  # shown in the panel, not lost in a callback
            self.message.value = f"<span style='color:#b00'>{escape(f'{type(error).__name__}: {error}')}</span>"
            return []
        self.message.value = (f"Wrote {', '.join(f'<code>{escape(str(path))}</code>' for path in written)}; "
                              f"the decisions are logged beside it in <code>*{LOG_SUFFIX}</code>")
        return written

    def to_html(self, limit: int = PAGE) -> str:
        """The panel as HTML with PNG images (the first ``limit`` findings and their decisions)."""
        rows = []
        for number in range(min(limit, len(self.findings))):
            finding = self.findings.frame.loc[number]
            rows.append(f"<tr><td>{png_img(finding_png(finding, self.classes), finding['kind'])}</td>"
                        f"<td>{describe(finding)}<br>decision: {self.decisions.get(number, UNDECIDED)}</td></tr>")
        more = f"<p>... and {len(self.findings) - limit} more</p>" if len(self.findings) > limit else ""
        return f"<div><p>{self._summary()}</p><table>{''.join(rows)}</table>{more}</div>"

