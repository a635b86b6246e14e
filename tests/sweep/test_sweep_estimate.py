"""The sweep estimate: which configurations a job can draw, how timings scale to trials and the
sweep, memory advice, and where it is shown (`automl-nb run --dry-run`, %%automl)."""

import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from automl_nb import cli
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import Choice, Input, QUniform, Uniform, image_classification
from automl_nb.sweep.estimate import estimate_sweep, sweep_configurations
from automl_nb.train.estimate import TimingCache, timing_key

TASK = "image_classification"
TINY = {"model_name": "resnet18", "use_pretrained_model": False, "training_crop_size": 32,
        "validation_resize_size": 32, "validation_crop_size": 32, "training_batch_size": 8,
        "validation_batch_size": 8, "number_of_epochs": 3}
YAML = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 4, max_concurrent_trials: 1}}
training_parameters: {{{parameters}}}
"""


def job_yaml(data) -> str:
    """The YAML of ``job_for(data)``."""
    return YAML.format(data=data, parameters=", ".join(f"{k}: {v}" for k, v in TINY.items()))


def job_for(data, epochs: int = 3, trials: int = 4, concurrent: int = 1, swept: bool = False):
    """A job of the tiny configuration; with ``swept`` its model is left to a search space.

    One trial at a time: then a timing process times one copy, as this process does, so a timing
    measured here is what the CLI and the magic find in the cache."""
    job = image_classification(training_data=Input(path=str(data), type="mltable"))
    fixed = {**TINY, "number_of_epochs": epochs}
    if swept:
        del fixed["model_name"], fixed["training_batch_size"]
    job.set_training_parameters(**fixed)
    job.set_limits(max_trials=trials, max_concurrent_trials=concurrent)
    return job


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """40 synthetic images of 32 px, and 80 more in a second folder."""
    root = tmp_path_factory.mktemp("estimate")
    small = make_dataset(TASK, 40, 32, root / "small", seed=0).parent
    large = make_dataset(TASK, 80, 32, root / "large", seed=1).parent
    return small, large


@pytest.fixture(scope="module")
def timed(shapes, tmp_path_factory):
    """A timing cache holding the tiny configuration, measured once in this process."""
    cache = TimingCache(tmp_path_factory.mktemp("cache") / "step_timings.json")
    estimate = estimate_sweep(job_for(shapes[0]), cache=cache, isolated=False)
    assert estimate.measured == 1
    return cache, estimate


# -- configurations -----------------------------------------------------------------------------
def test_choices_are_enumerated_and_continuous_step_keys_give_their_extremes(shapes):
    job = job_for(shapes[0], swept=True)
    job.extend_search_space({"model_name": Choice(["resnet18", "mobilenetv2"]),
                             "training_batch_size": QUniform(8, 32, 8), "learning_rate": Uniform(0.001, 0.1)})
    job.set_sweep(sampling_algorithm="random")
    configurations, capacity, notes = sweep_configurations(job, n_images=40, device="cpu")
    drawn = sorted((c["model_name"], c["training_batch_size"]) for c in configurations)
    assert drawn == [("mobilenetv2", 8), ("mobilenetv2", 32), ("resnet18", 8), ("resnet18", 32)]
    assert {c["learning_rate"] for c in configurations} == {0.01}  # not a step key: its default
    assert capacity is None and notes == []


def test_grid_sweeps_count_their_points_and_automode_takes_its_portfolio(shapes):
    job = job_for(shapes[0], trials=10, swept=True)
    job.extend_search_space({"model_name": Choice(["resnet18"]), "learning_rate": Choice([0.01, 0.02, 0.03])})
    job.set_sweep(sampling_algorithm="grid")
    configurations, capacity, _ = sweep_configurations(job, n_images=40, device="cpu")
    assert len(configurations) == 1 and capacity == 3
    automode = image_classification(training_data=Input(path=str(shapes[0]), type="mltable"))
    automode.set_limits(max_trials=6)
    models = [c["model_name"] for c in sweep_configurations(automode, n_images=40, device="cpu")[0]]
    assert models == ["resnet18", "mobilenetv2"]  # AutoMode's small-data CPU portfolio


# -- scaling ------------------------------------------------------------------------------------
def test_a_trial_scales_with_epochs_and_images_and_the_sweep_with_trials_and_concurrency(shapes, timed):
    cache, base = timed
    longer = estimate_sweep(job_for(shapes[0], epochs=6), cache=cache, isolated=False)
    larger = estimate_sweep(job_for(shapes[1], trials=8), cache=cache, isolated=False)
    assert longer.measured == larger.measured == 0  # the same configuration: timed once, then cached
    (a,), (b,), (c,) = base.configurations, longer.configurations, larger.configurations
    assert a.timing == b.timing == c.timing
    assert (base.train_images, base.validation_images, larger.train_images) == (32, 8, 64)
    build = a.timing.build_seconds
    assert b.trial_seconds - build == pytest.approx(2 * (a.trial_seconds - build))
    assert c.train_steps == 2 * a.train_steps and c.epoch_seconds > a.epoch_seconds
    startup = base.startup_seconds or 0.0
    assert base.wall_seconds() == pytest.approx(startup + 4 * a.trial_seconds)  # 4 trials, one at a time
    assert larger.wall_seconds() == pytest.approx(startup + 8 * c.trial_seconds)
    assert replace(larger, concurrent=3).wall_seconds() == pytest.approx(startup + 3 * c.trial_seconds)  # 3 waves
    assert "upper bound" in "\n".join(base.lines())


def test_a_configuration_over_its_memory_is_reported_with_a_batch_that_fits(shapes, timed, tmp_path):
    cache, base = timed
    key = timing_key(TASK, base.configurations[0].parameters, 3, "cpu", base.threads_per_trial)
    per_image = 10 * 2**20
    big = replace(base.configurations[0].timing, static_memory_bytes=200 * 2**20,
                  peak_memory_bytes=200 * 2**20 + 8 * per_image)  # batch 8 timed
    simulated = TimingCache(tmp_path / "timings.json")
    simulated.put({key: big})
    limit = 200 * 2**20 + 3 * per_image  # room for 3 images: a batch of 2 fits
    estimate = estimate_sweep(job_for(shapes[0]), memory_limit=limit, cache=simulated, isolated=False)
    (configuration,) = estimate.configurations
    assert not configuration.fits and configuration.batch_that_fits == 2
    text = "\n".join(estimate.lines())
    assert "will not fit: resnet18 (crop 32, batch 8) needs about 280 MiB of 230 MiB" in text
    assert "training_batch_size: 2 would fit" in text
    roomy = estimate_sweep(job_for(shapes[0]), memory_limit=2**40, cache=simulated, isolated=False)
    assert roomy.configurations[0].fits and "will not fit" not in "\n".join(roomy.lines())


def test_data_that_fails_its_check_is_not_timed_and_the_estimate_says_why(shapes, tmp_path):
    cache = TimingCache(tmp_path / "t.json")
    missing = estimate_sweep(job_for(tmp_path / "nowhere"), cache=cache)
    assert missing.lines()[0].startswith("estimate: skipped (the data check found ")
    assert "nowhere" in missing.lines()[0] and missing.configurations == () and not cache.path.exists()
    unchecked = estimate_sweep(job_for(tmp_path / "nowhere"), cache=cache, check_data=False)
    assert unchecked.lines()[0].startswith("estimate: skipped (the data cannot be read: ")
    broken = tmp_path / "broken"
    shutil.copytree(shapes[0], broken)
    (broken / "images" / "00003.png").unlink()
    estimate = estimate_sweep(job_for(broken), cache=cache)
    assert "00003.png" in estimate.skipped and not cache.path.exists()  # nothing was timed


# -- where it is shown --------------------------------------------------------------------------
@pytest.fixture
def warm_home_cache(timed, tmp_path, monkeypatch):
    """The default cache (under $XDG_CACHE_HOME) holding the tiny configuration: no timing process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("AUTOML_NB_NO_ESTIMATE", raising=False)
    (tmp_path / "xdg" / "automl_nb").mkdir(parents=True)
    shutil.copy(timed[0].path, tmp_path / "xdg" / "automl_nb" / "step_timings.json")


def test_dry_run_validates_estimates_and_makes_no_run_folder(shapes, warm_home_cache, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.yml").write_text(job_yaml(shapes[0]))
    assert cli.main(["run", "job.yml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "job.yml: a valid image_classification job (automode, 4 trial(s)), its data checked; dry run" in out
    assert "resnet18 (crop 32, batch 8): step " in out and "sweep: 4 trials, 1 at a time: about " in out
    assert "estimate: timing" not in out  # the cached timing: no timing process
    assert cli.main(["run", "job.yml", "--dry-run", "--no-estimate"]) == 0
    assert "estimate" not in capsys.readouterr().out
    (tmp_path / "bad.yml").write_text(job_yaml(tmp_path / "nowhere"))
    assert cli.main(["run", "bad.yml", "--dry-run"]) == 2  # the data check's problems, as `run` says them
    assert "nowhere" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yml", "job.yml", "xdg"]  # no runs/ folder


def test_the_cell_summary_shows_the_estimate_unless_told_not_to(shapes, warm_home_cache, tmp_path, monkeypatch):
    from IPython.testing.globalipapp import get_ipython

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects, **_: shown.extend(objects))
    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    monkeypatch.chdir(tmp_path)
    cell = job_yaml(shapes[0])
    shell.run_cell_magic("automl", "--dry-run", cell)
    shell.run_cell_magic("automl", "--dry-run --no-estimate", cell)
    with_estimate, without = shown
    assert "resnet18 (crop 32, batch 8): step " in repr(with_estimate)
    assert "<th>peak memory</th>" in with_estimate._repr_html_()
    assert without.estimate is None and "timed on this machine" not in repr(without)


def test_an_estimate_from_the_cache_loads_no_torch(shapes, timed, tmp_path):
    # %%automl runs in the notebook kernel: timing runs in a child process, the rest stays light.
    (tmp_path / "job.yml").write_text(job_yaml(shapes[0]))
    code = ("import sys\nfrom automl_nb.spec import load_job\nfrom automl_nb.sweep.estimate import estimate_sweep\n"
            "from automl_nb.train.estimate import TimingCache\n"
            "estimate = estimate_sweep(load_job(sys.argv[1]), cache=TimingCache(sys.argv[2]))\n"
            "print(estimate.measured, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "job.yml"), str(timed[0].path)],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "False"], done.stderr[-2000:]
