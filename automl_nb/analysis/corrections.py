"""Apply the decisions on a label audit's findings: a corrected labels file and a log.

For each labels file with a decided finding, ``<stem>.audited.jsonl`` is written next to it
(never over it: the original stays as it was), every image in the original order, one JSON
object a line, and ``<stem>.audit_log.jsonl`` gets one line per decision. Decisions:

- ``keep``: the label stays (logged, so a later audit can tell it was looked at).
- ``fix``: ``wrong_label`` takes the label the trials agree on; ``missing_box`` adds the box
  the trials found; ``spurious_box`` removes the box.
- ``drop``: the image leaves the file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from automl_nb._atomic import append_jsonl, atomic_write_text
from automl_nb.errors import AutoMLError, DataError

if TYPE_CHECKING:
    from automl_nb.analysis.audit import AuditFindings

KEEP, FIX, DROP = "keep", "fix", "drop"
DECISIONS = (KEEP, FIX, DROP)
AUDITED_SUFFIX = ".audited.jsonl"
LOG_SUFFIX = ".audit_log.jsonl"


def corrected_path(labels_file: str | Path) -> Path:
    """Where the corrected copy of ``labels_file`` goes: ``<stem>.audited.jsonl`` beside it.

    Example:
        >>> corrected_path("data/train/labels.jsonl")
        PosixPath('data/train/labels.audited.jsonl')
    """
    path = Path(labels_file)
    return path.with_name(path.stem + AUDITED_SUFFIX)


def log_path(labels_file: str | Path) -> Path:
    """Where the decisions on ``labels_file`` are logged: ``<stem>.audit_log.jsonl`` beside it."""
    path = Path(labels_file)
    return path.with_name(path.stem + LOG_SUFFIX)


def write_corrected(findings: "AuditFindings", decisions: Mapping[int, str]) -> list[Path]:
    """Write the corrected labels files and log the decisions.

    Args:
        findings: what :func:`~automl_nb.analysis.audit.audit_labels` found.
        decisions: finding number (row of ``findings.frame``) -> ``keep``, ``fix`` or ``drop``;
            findings without a decision are left alone and not logged.

    Returns:
        The corrected files written, one per labels file with a decision.

    Raises:
        ValueError: a decision that is not one of :data:`DECISIONS`, or for no finding.
        AutoMLError: a finding's labels file is not a local file (or it changed since the audit).

    Example:
        >>> write_corrected(findings, {0: "fix", 1: "drop", 2: "keep"})
        [PosixPath('data/train/labels.audited.jsonl')]
    """
    frame = findings.frame
    by_file: dict[str, list[tuple[int, int, str]]] = {}
    for number, decision in decisions.items():
        if decision not in DECISIONS:
            raise ValueError(f"decisions[{number}]: {decision!r} is not one of {', '.join(DECISIONS)}")
        if not isinstance(number, (int, np.integer)) or not 0 <= number < len(frame):
            raise ValueError(f"decisions: {number!r} is not a finding number (0 to {len(frame) - 1})")
        source = frame.at[int(number), "source"]
        if not source:
            raise AutoMLError(f"finding {number} ({frame.at[int(number), 'image']}): no labels file is known for it")
        file, _, line = str(source).rpartition(":")
        by_file.setdefault(file, []).append((int(number), int(line), decision))
    return [_correct_file(Path(file), findings, decided) for file, decided in by_file.items()]


def _correct_file(path: Path, findings: "AuditFindings", decided: list[tuple[int, int, str]]) -> Path:
    if not path.is_file():
        raise AutoMLError(f"{path}: the labels file of the audited images is not a local file; "
                          "copy it (with its images) to a local folder and audit that run")
    records = _records_by_line(path)
    column, task = findings.target_column_name, findings.task
    log, stamp = [], time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for number, line, decision in sorted(decided, key=lambda item: item[2] == DROP):  # fixes, then drops
        finding = findings.frame.loc[number]
        if line not in records:
            raise AutoMLError(f"{path}:{line}: no image starts there; the file changed since the audit")
        if records[line] is not None and Path(str(records[line].get("image_url"))).name != Path(finding["image"]).name:
            raise AutoMLError(f"{path}:{line}: holds {records[line].get('image_url')!r}, not the audited image "
                              f"{finding['image']!r}; the file changed since the audit")
        before = None if records[line] is None else json.loads(json.dumps(records[line][column]))
        if decision == DROP:
            records[line] = None
        elif decision == FIX and records[line] is not None:
            _fix(records[line], column, finding, task)
        after = None if records[line] is None else records[line][column]
        log.append({"time": stamp, "image": finding["image"], "kind": finding["kind"], "decision": decision,
                    "source": f"{path}:{line}", "before": before, "after": after})
    out = corrected_path(path)
    atomic_write_text(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in records.values() if row))
    for entry in log:
        append_jsonl(log_path(path), entry)
    return out


def _fix(row: dict, column: str, finding: Mapping[str, Any], task: str) -> None:
    from automl_nb.analysis.audit import MISSING_BOX, SPURIOUS_BOX, WRONG_LABEL
    from automl_nb.spec.tasks import SEGMENTATION

    if finding["kind"] == WRONG_LABEL:
        row[column] = finding["agreed"]
    elif finding["kind"] == MISSING_BOX:
        box = finding["box"]
        added = {"label": finding["agreed"], **box, "isCrowd": 0}
        if task == SEGMENTATION:  # an object of a segmentation file needs its outline; a box is one
            polygon = finding["polygon"] or [[box["topX"], box["topY"], box["bottomX"], box["topY"],
                                              box["bottomX"], box["bottomY"], box["topX"], box["bottomY"]]]
            added["polygon"] = polygon
        row[column] = list(row[column]) + [added]
    elif finding["kind"] == SPURIOUS_BOX:
        box = finding["box"]
        corners = ("topX", "topY", "bottomX", "bottomY")
        distance = [max(abs(float(obj[k]) - float(box[k])) for k in corners) if obj.get("label") == finding["label"]
                    else np.inf for obj in row[column]]
        if distance and min(distance) < 1e-6:
            row[column] = [obj for k, obj in enumerate(row[column]) if k != int(np.argmin(distance))]


def _records_by_line(path: Path) -> dict[int, dict | None]:
    """Each JSON object of a JSONL file (pretty-printed ones too) by the line it starts on, in order."""
    text = path.read_text(encoding="utf-8")
    decoder, records, position = json.JSONDecoder(), {}, 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return records
        try:
            row, end = decoder.raw_decode(text, position)
        except ValueError as error:
            raise DataError(f"{path}: not JSONL any more ({error}); the file changed since the audit") from None
        records[text.count("\n", 0, position) + 1] = row
        position = end
