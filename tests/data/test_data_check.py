"""The data check before a run: each bad input is refused by ``job.submit()`` with a message
naming ``file:line`` and the offending value, before a run folder, an executor or a trial exists.

Every case writes a tiny data set (12 good lines of 8x8 images, one line or file made bad) and
submits a job on it with a trial function that would leave a marker file if it ever ran.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest
from PIL import Image

from automl_nb.data.check import check_data, check_job_data
from automl_nb.data.jsonl import read_jsonl
from automl_nb.errors import DataCheckError, DataError
from automl_nb.spec import load_job
from automl_nb.spec.tasks import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION
from automl_nb.sweep import load_run
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.sweep.store import RunStore
from automl_nb.testing import ScriptedTrial

GOOD_LINES = 12


class MarkerTrial(ScriptedTrial):
    """A scripted trial that first writes a marker file: if the marker exists, a trial ran."""

    def __init__(self, marker: Path) -> None:
        super().__init__([0.5])
        self.marker = marker

    def __call__(self, trial, reporter):
        self.marker.write_text(trial.trial_id)
        return super().__call__(trial, reporter)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Twelve 8x8 PNG images, shared by every case (cases add their bad files elsewhere)."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(GOOD_LINES):
        path = folder / f"{i:02d}.png"
        Image.new("RGB", (8, 8), (20 * i, 100, 200)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def no_executor(monkeypatch):
    """Fail the test if a submit gets as far as making its Dask executor (and cluster)."""
    made = []

    def refuse(*args, **kwargs):
        made.append(args)
        raise AssertionError("an executor was made for a job whose data check should have failed")

    monkeypatch.setattr("automl_nb.sweep.run._dask_executor", refuse)
    return made


def good_row(task: str, image: Path, index: int) -> dict:
    """A valid JSONL row of ``task`` for ``image``; classes alternate cat, dog."""
    name = ("cat", "dog")[index % 2]
    if task == MULTICLASS:
        return {"image_url": str(image), "label": name}
    if task == MULTILABEL:
        return {"image_url": str(image), "label": [name]}
    if task == DETECTION:
        return {"image_url": str(image), "label": [{"label": name, "topX": 0.1, "topY": 0.1, "bottomX": 0.5,
                                                    "bottomY": 0.5}]}
    return {"image_url": str(image), "label": [{"label": name, "polygon": [[0.1, 0.1, 0.5, 0.1, 0.5, 0.5]]}]}


def write_rows(path: Path, rows) -> Path:
    """Write rows one a line (dicts as JSON, strings verbatim)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def data_set(folder: Path, task: str, images, bad: dict[int, object] | None = None, count: int = GOOD_LINES) -> Path:
    """``folder/labels.jsonl`` with ``count`` good rows; ``bad`` replaces rows by line number (1-based)."""
    rows = [good_row(task, images[i % len(images)], i) for i in range(count)]
    for line, row in (bad or {}).items():
        rows[line - 1] = row
    return write_rows(folder / "labels.jsonl", rows)


def job_for(task: str, training: Path, validation: Path | None = None):
    """A single-trial job of one epoch (only scripted trials run it) on ``training`` (and ``validation``)."""
    text = (f"task: {task}\ntarget_column_name: label\ntraining_data: {{path: {training}, type: mltable}}\n"
            f"training_parameters: {{number_of_epochs: 1}}\n")
    if validation is not None:
        text += f"validation_data: {{path: {validation}, type: mltable}}\n"
    return load_job(text)


def refused(job, tmp_path: Path) -> DataCheckError:
    """Submit ``job``; assert the data check refused it and that nothing was made or run."""
    output, marker = tmp_path / "run", tmp_path / "trial-ran"
    with pytest.raises(DataCheckError) as caught:
        job.submit(output, trial_function=MarkerTrial(marker))
    assert not output.exists() and not marker.exists()
    return caught.value


def only_problem(error: DataCheckError) -> str:
    assert len(error.problems) == 1, error.problems
    return error.problems[0]


# ---- one bad line of labels --------------------------------------------------------------------

IMAGE = "{image}"  # stands for the path of a good image in the rows below

BAD_LINES = [
    # (task, the bad line 3, what its problem must say: file:line and the value)
    (MULTICLASS, '{"image_url": "a.png", "label": "cat"', r"""malformed JSON: Expecting ',' delimiter \(column 38\) near '\{"image_url": "a.png", "label": "cat"'$"""),
    (MULTICLASS, '["not", "an", "object"]', r"expected a JSON object, got list"),
    (MULTICLASS, {"label": "cat"}, r"missing image_url \(keys present: label\)"),
    (MULTICLASS, {"image_url": "  ", "label": "cat"}, r"missing image_url \(keys present: image_url, label\)"),
    (MULTICLASS, {"image_url": IMAGE, "category": "cat"},
     r"missing target column 'label' \(target_column_name; keys present: image_url, category\)"),
    (MULTICLASS, {"image_url": IMAGE, "label": ["cat", "dog"]},
     r'label for image_classification must be a class name string, got a list \["cat", "dog"\] \(a list is'),
    (MULTICLASS, {"image_url": IMAGE, "label": None}, r"must be a class name string, got null"),
    (MULTICLASS, {"image_url": IMAGE, "label": " "}, r'must be a class name string, got a string " "'),
    (MULTICLASS, {"image_url": IMAGE, "label": {"label": "cat"}}, r'got an object \{"label": "cat"\} \(objects with'),
    (MULTICLASS, {"image_url": IMAGE, "label": "cat", "image_details": {"width": "wide"}},
     r"image_details width must be a positive size like '640px', got 'wide'"),
    (MULTICLASS, {"image_url": IMAGE, "label": "cat", "image_details": "640x480"},
     r"image_details must be an object, got '640x480'"),
    (MULTILABEL, {"image_url": IMAGE, "label": "cat,dog"},
     r'label for image_classification_multilabel must be a list of class names, got a string "cat,dog"'),
    (MULTILABEL, {"image_url": IMAGE, "label": ["cat", None]}, r"must be a list of class names, found null in it"),
    (MULTILABEL, {"image_url": IMAGE, "label": ["cat", {"label": "dog"}]}, r'found an object \{"label": "dog"\}'),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.6, "topY": 0.1, "bottomX": 0.5,
                                                "bottomY": 0.5}]},
     r"object 1: box has zero area: topX=0.6 bottomX=0.5 \(needs topX < bottomX\)"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.1, "topY": 0.5, "bottomX": 0.5,
                                                "bottomY": 0.5}]},
     r"box has zero area: topY=0.5 bottomY=0.5"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 120, "topY": 30, "bottomX": 200,
                                                "bottomY": 90}]},
     r"object 1: topX=120 is outside \[0, 1\] \(coordinates are fractions of the image size\); it looks like pixels"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": -0.2, "topY": 0.1, "bottomX": 0.5,
                                                "bottomY": 0.5}]},
     r"topX=-0.2 is outside \[0, 1\]"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.1, "topY": "abc", "bottomX": 0.5,
                                                "bottomY": 0.5}]},
     r"topY must be a number, got 'abc'"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5}]},
     r"missing box coordinate\(s\) bottomY"),
    (DETECTION, {"image_url": IMAGE, "label": "cat"},
     r'label for image_object_detection must be a list of objects with label, topX.*got a string "cat"'),
    (DETECTION, {"image_url": IMAGE, "label": ["cat"]},
     r'object 1: expected an object with label, topX, topY, bottomX, bottomY, got a string "cat"'),
    (DETECTION, {"image_url": IMAGE, "label": [{"topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}]},
     r"object 1: missing or empty 'label' \(keys present: topX, topY, bottomX, bottomY\)"),
    (DETECTION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5,
                                                "bottomY": 0.5, "isCrowd": "maybe"}]},
     r"isCrowd must be 0, 1, true or false, got 'maybe'"),
    (SEGMENTATION, {"image_url": IMAGE, "label": [{"label": "cat", "polygon": [[0.1, 0.1, 0.5, 0.1, 0.5]]}]},
     r"object 1: polygon ring 1 has an odd number of coordinates \(5\)"),
    (SEGMENTATION, {"image_url": IMAGE, "label": [{"label": "cat", "polygon": [[0.1, 0.1, 0.5, 0.1]]}]},
     r"polygon ring 1 has 2 points, needs at least 3"),
    (SEGMENTATION, {"image_url": IMAGE, "label": [{"label": "cat", "polygon": [[0.1, 0.1, 1.5, 0.1, 0.5, 0.5]]}]},
     r"polygon ring 1 value=1.5 is outside \[0, 1\]"),
    (SEGMENTATION, {"image_url": IMAGE, "label": [{"label": "cat", "polygon": "abc"}]},
     r"polygon must be a list of rings \[\[x1, y1, x2, y2, \.\.\.\]\], got 'abc'"),
    (SEGMENTATION, {"image_url": IMAGE, "label": [{"label": "cat", "topX": 0.1, "topY": 0.1, "bottomX": 0.5,
                                                   "bottomY": 0.5}]},
     r"image_instance_segmentation needs a 'polygon' for each object"),
]


@pytest.mark.parametrize("task, row, message", BAD_LINES, ids=[f"{t.split('_')[-1]}-{i}" for i, (t, _, _) in
                                                                 enumerate(BAD_LINES)])
def test_a_bad_label_line_is_refused_before_anything_starts(tmp_path, images, task, row, message):
    if isinstance(row, dict) and row.get("image_url") == IMAGE:
        row = {**row, "image_url": str(images[2])}
    labels = data_set(tmp_path / "data", task, images, {3: row})
    problem = only_problem(refused(job_for(task, labels.parent), tmp_path))
    assert problem.startswith(f"{labels}:3: "), problem
    assert re.search(message, problem), problem


# ---- one bad image -------------------------------------------------------------------------------

def _noise_bytes(image_format: str) -> bytes:
    """A 32x32 noise image in ``image_format``: large enough that cutting it in half loses pixel data."""
    import io

    buffer = io.BytesIO()
    Image.effect_noise((32, 32), 60).convert("RGB").save(buffer, format=image_format)
    return buffer.getvalue()


def _bad_crc_png() -> bytes:
    data = bytearray(_noise_bytes("PNG"))
    data[data.find(b"IDAT") + 8] ^= 0xFF  # a byte of compressed pixels: the chunk's CRC no longer matches
    return bytes(data)


BAD_IMAGES = [
    # (file name, its bytes or None for no file, what the problem must say after "cannot read image PATH")
    ("nope.png", None, r"image not found: \S*nope\.png"),
    ("empty.png", b"", r"cannot read image \S*empty\.png: the file is empty \(0 bytes\)"),
    ("notes.jpg", b"this is not an image, it is text\n",
     r"cannot read image \S*notes\.jpg: not an image file PIL can read \(it starts with b'this is not an image"),
    ("cut.png", _noise_bytes("PNG")[:1500], r"cannot read image \S*cut\.png: Truncated File Read"),
    ("cut.jpg", _noise_bytes("JPEG")[:900], r"cannot read image \S*cut\.jpg: truncated JPEG \(no end-of-image marker\)"),
    ("crc.png", _bad_crc_png(), r"cannot read image \S*crc\.png: broken PNG file \(bad header checksum in b'IDAT'\)"),
]


@pytest.mark.parametrize("name, content, message", BAD_IMAGES, ids=[name for name, _, _ in BAD_IMAGES])
def test_a_bad_image_file_is_refused_naming_its_line_and_path(tmp_path, images, name, content, message):
    bad = tmp_path / "bad" / name
    if content is not None:
        bad.parent.mkdir()
        bad.write_bytes(content)
    labels = data_set(tmp_path / "data", MULTICLASS, images, {5: {"image_url": str(bad), "label": "cat"}})
    problem = only_problem(refused(job_for(MULTICLASS, labels), tmp_path))
    assert problem.startswith(f"{labels}:5: "), problem
    assert re.search(message, problem), problem


@pytest.mark.parametrize("side, said", [(12, r"12x12 = 144 pixels is over PIL's decompression-bomb limit "
                                               r"PIL\.Image\.MAX_IMAGE_PIXELS = 100"),
                                        (16, r"Image size \(256 pixels\) exceeds limit of 200 pixels.*"
                                             r"\(PIL\.Image\.MAX_IMAGE_PIXELS is 100\)")])
def test_a_decompression_bomb_is_refused_under_and_over_twice_the_limit(tmp_path, images, monkeypatch, side, said):
    # PIL warns above MAX_IMAGE_PIXELS and refuses above twice it; the check refuses both.
    bomb = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(bomb)
    labels = data_set(tmp_path / "data", MULTICLASS, images, {7: {"image_url": str(bomb), "label": "dog"}})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the good images have 64 pixels
    problem = only_problem(refused(job_for(MULTICLASS, labels), tmp_path))
    assert problem.startswith(f"{labels}:7: cannot read image {bomb}: ") and re.search(said, problem), problem


def test_an_unknown_url_protocol_is_a_problem_of_its_line(tmp_path, images):
    labels = data_set(tmp_path / "data", MULTICLASS, images, {2: {"image_url": "nosuchfs://bucket/a.png",
                                                                  "label": "dog"}})
    problem = only_problem(refused(job_for(MULTICLASS, labels), tmp_path))
    assert problem.startswith(f"{labels}:2: cannot open image nosuchfs://bucket/a.png: "), problem


# ---- paths, MLTable files and whole files --------------------------------------------------------

def _two_jsonl(folder: Path, images) -> Path:
    data_set(folder, MULTICLASS, images)
    (folder / "labels.jsonl").rename(folder / "a.jsonl")
    data_set(folder, MULTICLASS, images)
    return folder


def _mltable(text: str):
    def make(folder: Path, images) -> Path:
        data_set(folder, MULTICLASS, images)
        (folder / "MLTable").write_text(text)
        return folder
    return make


def _raw_file(content: bytes):
    def make(folder: Path, images) -> Path:
        folder.mkdir()
        (folder / "labels.jsonl").write_bytes(content)
        return folder / "labels.jsonl"
    return make


BAD_FILES = [
    ("missing-folder", lambda folder, images: folder, r"training/validation data not found: \S*data$"),
    ("no-jsonl", lambda folder, images: folder.mkdir() or folder,
     r"data: folder has no \.jsonl files and no MLTable file; point at one JSONL file or add an MLTable"),
    ("two-jsonl", _two_jsonl, r"data: folder has 2 \.jsonl files and no MLTable file"),
    ("mltable-yaml", _mltable("paths: [file: ./labels.jsonl\n"), r"data/MLTable: malformed YAML"),
    ("mltable-no-paths", _mltable("transformations: []\n"),
     r"data/MLTable: no 'paths' listed \(expected 'paths: - file: \./x\.jsonl'\)"),
    ("mltable-missing-file", _mltable("paths:\n  - file: ./missing.jsonl\n"),
     r"data/MLTable: listed file \./missing\.jsonl not found"),
    ("mltable-csv", _mltable("paths:\n  - file: ./labels.jsonl\ntransformations:\n  - read_delimited: {}\n"),
     r"data/MLTable: image data must be JSON lines \(read_json_lines\), found read_delimited"),
    ("mltable-unknown-entry", _mltable("paths:\n  - url: ./labels.jsonl\n"),
     r"data/MLTable: unknown paths entry 'url' \(expected file, folder or pattern\)"),
    ("empty-jsonl", _raw_file(b"\n\n"), r"labels\.jsonl: no records \(the file is empty\)"),
    ("latin1-jsonl", _raw_file('{"image_url": "caf\xe9.png", "label": "cat"}\n'.encode("latin-1")),
     r"labels\.jsonl: not UTF-8 text"),
]


@pytest.mark.parametrize("make, message", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_missing_or_malformed_data_file_is_refused_naming_it(tmp_path, images, make, message):
    training = make(tmp_path / "data", images)
    problem = only_problem(refused(job_for(MULTICLASS, training), tmp_path))
    assert re.search(message, problem), problem


def test_too_few_images_and_a_single_class_are_refused(tmp_path, images):
    labels = data_set(tmp_path / "data", MULTICLASS, images, count=5)
    labels.write_text(labels.read_text().replace('"dog"', '"cat"'))
    problems = refused(job_for(MULTICLASS, labels), tmp_path).problems
    assert problems == (
        f"needs at least 10 training images, found 5 ({labels}); 10-15 per label are recommended",
        f"{labels}: the training data has a single class, 'cat'; image_classification needs at least 2 "
        f"(images of each class to tell apart)",
    )


@pytest.mark.parametrize("task", [MULTICLASS, DETECTION])
def test_a_validation_class_never_seen_in_training_is_refused(tmp_path, images, task):
    training = data_set(tmp_path / "train", task, images)
    unseen = json.loads(json.dumps(good_row(task, images[0], 0)).replace('"cat"', '"zebra"'))
    validation = data_set(tmp_path / "valid", task, images, {2: unseen, 4: unseen}, count=4)
    problem = only_problem(refused(job_for(task, training, validation), tmp_path))
    assert problem == (f"{validation}:2: validation label 'zebra' is in no training image "
                       f"(2 validation images carry it); training classes: cat, dog")


# ---- many problems -----------------------------------------------------------------------------

def test_every_problem_is_collected_and_the_message_shows_the_first_20_and_the_total(tmp_path, images):
    rows = [{"image_url": str(images[0]), "label": ["cat"]}] * 50 + ["{broken"] * 7  # lists in a multiclass file
    labels = write_rows(tmp_path / "data" / "labels.jsonl", [good_row(MULTICLASS, images[i], i) for i in range(12)]
                        + rows)
    error = refused(job_for(MULTICLASS, labels), tmp_path)
    assert len(error.problems) == 57
    lines = str(error).splitlines()
    assert lines[0] == "the data check found 57 problems; nothing was started:"
    assert lines[1:21] == list(error.problems[:20]) and lines[21] == "... and 37 more (57 problems)"
    assert len(lines) == 22
    # In line order, each naming its line and value: 50 lists in a multiclass file, then 7 malformed lines.
    assert [p.split(": ", 1)[0] for p in error.problems] == [f"{labels}:{n}" for n in range(13, 70)]
    assert all(re.search(r'must be a class name string, got a list \["cat"\]', p) for p in error.problems[:50])
    assert all(re.search(r"malformed JSON: .* near '\{broken'", p) for p in error.problems[50:])


def test_problems_are_collected_across_training_and_validation_files(tmp_path, images):
    training = data_set(tmp_path / "train", DETECTION, images, {2: "{oops", 9: {"image_url": "x.png"}})
    bad_box = good_row(DETECTION, images[0], 0)
    bad_box["label"][0]["bottomX"] = 1.7
    validation = data_set(tmp_path / "valid", DETECTION, images,
                          {1: bad_box, 3: {"image_url": str(tmp_path / "gone.png"), "label": []}}, count=3)
    problems = refused(job_for(DETECTION, training, validation), tmp_path).problems
    assert [p.split(": ", 1)[0] for p in problems] == [f"{training}:2", f"{training}:9", f"{validation}:1",
                                                       f"{validation}:3"]
    assert "bottomX=1.7 is outside" in problems[2] and "image not found" in problems[3] and "gone.png" in problems[3]


def test_problems_are_collected_across_the_files_an_mltable_lists(tmp_path, images):
    folder = tmp_path / "data"
    data_set(folder / "parts" / "one", MULTICLASS, images, {4: {"image_url": str(images[0])}})
    data_set(folder / "parts" / "two", MULTICLASS, images, {6: "not json"})
    (folder / "MLTable").write_text("paths:\n  - pattern: ./parts/*/labels.jsonl\n")
    problems = refused(job_for(MULTICLASS, folder), tmp_path).problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{folder}/parts/one/labels.jsonl:4: missing target column 'label'")
    assert problems[1].startswith(f"{folder}/parts/two/labels.jsonl:6: malformed JSON")


# ---- images behind URLs -------------------------------------------------------------------------

@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1: yields ``(folder, base_url)``."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 drops connections when 32 checks connect at once

    folder = tmp_path / "served"
    folder.mkdir()
    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_images_served_over_http_are_checked(tmp_path, images, http_folder):
    pytest.importorskip("aiohttp")
    folder, base = http_folder
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    rows = [good_row(MULTICLASS, f"{base}/{image.name}", i) for i, image in enumerate(images)]
    labels = write_rows(tmp_path / "data" / "labels.jsonl", rows)
    checked = check_job_data(job_for(MULTICLASS, labels))
    assert checked.images_checked == 12 and {(r.width, r.height, r.image_format) for r in checked.training} == {
        (8, 8, "png")}
    # One URL the server does not have: the check names the line and the URL.
    write_rows(labels, rows[:10] + [{"image_url": f"{base}/missing.png", "label": "cat"}] + rows[11:])
    problem = only_problem(refused(job_for(MULTICLASS, labels), tmp_path))
    assert problem == f"{labels}:11: image not found: {base}/missing.png"


def test_labels_and_images_in_memory_fs_are_checked(images, memory_fs):
    for image in images[:11]:
        memory_fs.pipe(f"/ds/images/{image.name}", image.read_bytes())
    rows = [good_row(MULTICLASS, f"images/{image.name}", i) for i, image in enumerate(images)]
    memory_fs.pipe("/ds/labels.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    with pytest.raises(DataCheckError) as caught:
        check_data("memory://ds/labels.jsonl", MULTICLASS)
    assert caught.value.problems == ("memory://ds/labels.jsonl:12: image not found: memory://ds/images/11.png",)


# ---- the check's own contract ---------------------------------------------------------------

def test_good_data_passes_with_sizes_read_from_the_files(tmp_path, images):
    training = data_set(tmp_path / "train", SEGMENTATION, images)
    validation = data_set(tmp_path / "valid", SEGMENTATION, images, count=3)
    checked = check_job_data(job_for(SEGMENTATION, training, validation))
    assert (len(checked.training), len(checked.validation), checked.images_checked) == (12, 3, 12)
    assert all((r.width, r.height, r.image_format) == (8, 8, "png") for r in checked.training)


def test_check_data_false_skips_the_check(tmp_path, images, monkeypatch):
    # A store the user trusts: the run folder is made and the sweep started without reading the data.
    started = []
    monkeypatch.setattr("automl_nb.sweep.run.Run._start", lambda run, job, **options: started.append(job))
    labels = data_set(tmp_path / "data", MULTICLASS, images, {3: "{broken"})
    run = job_for(MULTICLASS, labels).submit(tmp_path / "run", check_data=False)
    assert (tmp_path / "run" / "run.json").exists() and run.folder == tmp_path / "run"
    assert len(started) == 1 and started[0].training_data.path == str(labels)


def test_resume_checks_the_data_again_and_starts_nothing_when_it_broke(tmp_path, images):
    labels = data_set(tmp_path / "data", MULTICLASS, images)
    RunStore(tmp_path / "run").create(job_for(MULTICLASS, labels))  # as submit() leaves it, before trials
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"")
    data_set(tmp_path / "data", MULTICLASS, images, {12: {"image_url": str(tmp_path / "bad" / "x.png"),
                                                          "label": "dog"}})
    with pytest.raises(DataCheckError, match=r"labels\.jsonl:12: cannot read image .*x\.png: the file is empty"):
        load_run(tmp_path / "run").resume(executor=InProcessExecutor(MarkerTrial(tmp_path / "trial-ran")))
    assert not (tmp_path / "trial-ran").exists()
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_submit_without_output_makes_no_runs_folder(tmp_path, images, monkeypatch):
    labels = data_set(tmp_path / "data", MULTICLASS, images, {1: {"image_url": str(images[0]), "label": True}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataCheckError, match=r"labels\.jsonl:1: label for image_classification must be a class "
                                             r"name string, got a bool true"):
        job_for(MULTICLASS, labels).submit(trial_function=MarkerTrial(tmp_path / "trial-ran"))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "trial-ran").exists()


def test_data_check_error_is_a_data_error_and_pickles_with_its_problems():
    import pickle

    error = DataCheckError([f"a.jsonl:{n}: bad" for n in range(1, 23)])
    assert isinstance(error, DataError)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems and str(copy) == str(error)
    assert str(error).splitlines()[-1] == "... and 2 more (22 problems)"
    assert str(DataCheckError(["a.jsonl:1: bad"])).splitlines() == [
        "the data check found 1 problem; nothing was started:", "a.jsonl:1: bad"]


def test_read_jsonl_collects_when_asked_and_raises_the_first_otherwise(tmp_path, images):
    labels = data_set(tmp_path / "data", MULTICLASS, images, {2: "{x", 5: {"image_url": "a.png"}})
    with pytest.raises(DataError, match=r"labels\.jsonl:2: malformed JSON") as caught:
        read_jsonl(labels, MULTICLASS)
    assert not isinstance(caught.value, DataCheckError)
    found = ["earlier problem"]
    records = read_jsonl(labels, MULTICLASS, problems=found)
    assert len(records) == 10 and found[0] == "earlier problem"
    assert [p.split(": ", 1)[0] for p in found[1:]] == [f"{labels}:2", f"{labels}:5"]
    assert read_jsonl(tmp_path / "nope.jsonl", MULTICLASS, problems=found) == []
    assert found[-1].startswith("JSONL file not found:")
