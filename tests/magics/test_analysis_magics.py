"""``%automl diff A B`` and ``%automl errors [TRIAL]``: the panels from a run folder alone, bound
with -o, the gallery saved as a page with --html, and mistakes as UsageErrors."""

import json

import pytest
from IPython.core.error import UsageError

from automl_nb.analysis.predictions import write_predictions


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "automl_nb")
    yield ip
    for name in ("gallery", "panel"):
        ip.user_ns.pop(name, None)


@pytest.fixture
def run_folder(tmp_path):
    """Two classification trials written by hand: trial 1 the better, disagreeing on one image."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "Completed"}))
    for index, (metric, probs) in enumerate([(0.5, [0.8, 0.2]), (0.9, [0.3, 0.7])]):
        trial = run / "trials" / str(index)
        trial.mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps({"trial_id": str(index), "index": index, "best_metric": metric}))
        (trial / "params.json").write_text(json.dumps({"trial_id": str(index), "task": "image_classification",
                                                       "parameters": {}}))
        (trial / "labels.json").write_text(json.dumps(["cat", "dog"]))
        write_predictions(trial, [{"filename": str(tmp_path / "x.png"), "label": "dog", "probs": probs, "loss": 1.0}])
    return run


def test_diff_and_errors_show_their_panels(shell, run_folder, tmp_path, capsys):
    shell.run_line_magic("automl", f"diff 0 1 -r {run_folder} -o gallery --html {tmp_path / 'diff.html'}")
    gallery = shell.user_ns["gallery"]
    assert (gallery.a.trial_id, gallery.b.trial_id) == ("0", "1") and gallery.items[0]["only_b_right"]
    assert f"saved {tmp_path / 'diff.html'}" in capsys.readouterr().out and (tmp_path / "diff.html").is_file()
    shell.run_line_magic("automl", f"errors -r {run_folder} -o panel")
    assert shell.user_ns["panel"].trial.trial_id == "1"  # the best trial by default
    with pytest.raises(UsageError, match="trial '9': no such trial .*; allowed: 0, 1"):
        shell.run_line_magic("automl", f"diff 0 9 -r {run_folder}")
    with pytest.raises(UsageError, match="the following arguments are required: B"):
        shell.run_line_magic("automl", f"diff 0 -r {run_folder}")
