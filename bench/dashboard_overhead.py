"""Dashboard overhead: a scripted sweep with and without a live ``SweepDashboard`` attached.

Runs the same ``--trials`` scripted trials (nothing trains; ``ScriptedTrial`` on threads of this
process, ``InProcessExecutor``) twice: once bare, once with a dashboard built on the run and
following it (its widgets exist without a notebook front end, as in the widget tests). Prints
both sweep times and their ratio, how long building the dashboard took and its slowest
refresh, what the live chart was sent (its deltas: points appended, not the history) and how
long drawing the parallel coordinates took, and then how long ``resume()`` of the finished run
takes (it has nothing to run).
Goals (issue 20 item 9): under 5% at 1,000 trials, one refresh under 0.5 s, resume under 2 s.

    python bench/dashboard_overhead.py [--trials 1000] [--epochs 3] [--concurrent 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import load_job
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial
from automl_nb.widgets import SweepDashboard
from automl_nb.widgets import dashboard as dashboard_module

_PARALLEL_PNG = dashboard_module.parallel_png

JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: {trials}, max_concurrent_trials: {concurrent}}}
sweep: {{sampling_algorithm: random}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: uniform, min_value: 0.001, max_value: 0.1}}
    optimizer: {{type: choice, values: [sgd, adam]}}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: {epochs}
  early_stopping: false
  random_seed: 0
"""


def curve(params: dict) -> list[float]:
    """A metric that rises with the learning rate, so the trials differ."""
    return [min(0.99, params["learning_rate"] * 5 * epoch) for epoch in range(1, 1 + params["number_of_epochs"])]


def sweep(data: Path, out: Path, args, with_dashboard: bool, trials: int | None = None) -> dict:
    """One sweep; its wall time, and the dashboard's build time and slowest refresh when attached."""
    job = load_job(JOB.format(data=data, trials=trials or args.trials, concurrent=args.concurrent, epochs=args.epochs))
    started = time.perf_counter()
    run = job.submit(out, check_data=False, executor=InProcessExecutor(ScriptedTrial(curve), args.concurrent))
    result: dict = {}
    dashboard = None
    if with_dashboard:
        built = time.perf_counter()
        dashboard = SweepDashboard(run)
        result["build"] = time.perf_counter() - built
        result["curves"] = curves = _time_drawings(dashboard)
        result["deltas"] = _measure_deltas(dashboard)
        refreshes = _time_refreshes(dashboard, curves)
    run.wait(report=None)
    result["sweep"] = time.perf_counter() - started
    if dashboard is not None:
        time.sleep(0.2)
        dashboard.close()
        result["refreshes"] = refreshes
        dashboard_module.parallel_png = _PARALLEL_PNG
    result["run"] = run
    return result


def _time_refreshes(dashboard, curves: list[float]) -> list[tuple[float, float]]:
    """Wrap the dashboard's refresh to time each one (the updater thread calls it): its
    seconds, and those of them spent drawing the curves."""
    seconds: list[tuple[float, float]] = []
    refresh = dashboard.refresh

    def timed():
        started, drawn = time.perf_counter(), len(curves)
        try:
            return refresh()
        finally:
            seconds.append((time.perf_counter() - started, sum(curves[drawn:])))

    dashboard.refresh = timed
    return seconds


def _time_drawings(dashboard) -> list[float]:
    """Time each drawing of the parallel coordinates (a PNG, at its own pace) from now on."""
    seconds: list[float] = []
    draw = _PARALLEL_PNG

    def timed(*args):
        started = time.perf_counter()
        try:
            return draw(*args)
        finally:
            seconds.append(time.perf_counter() - started)

    dashboard_module.parallel_png = timed
    return seconds


def _measure_deltas(dashboard) -> list[tuple[float, int, int]]:
    """Each update of the live chart: its seconds, the points it sent and the JSON bytes of its delta."""
    import json

    sizes: list[tuple[float, int, int]] = []
    update = dashboard.curves.update

    def measured(*args, **kwargs):
        seq, started = dashboard.curves.seq, time.perf_counter()
        try:
            return update(*args, **kwargs)
        finally:
            if dashboard.curves.seq != seq:
                delta = dashboard.curves.delta
                sizes.append((time.perf_counter() - started, sum(map(len, delta["points"].values())),
                              len(json.dumps(delta))))

    dashboard.curves.update = measured
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="sweeps of each kind; the fastest of each counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_dataset("image_classification", 8, 32, tmp / "data", seed=0).parent
        sweep(data, tmp / "warm-up", args, with_dashboard=True, trials=4)  # imports, paid once
        bare, shown = None, None
        for i in range(args.repeat):  # alternated, so a busy moment of the machine hits both
            one = sweep(data, tmp / f"bare-{i}", args, with_dashboard=False)
            bare = one if bare is None or one["sweep"] < bare["sweep"] else bare
            one = sweep(data, tmp / f"shown-{i}", args, with_dashboard=True)
            shown = one if shown is None or one["sweep"] < shown["sweep"] else shown
        curves = shown["run"].folder / "learning_curves.png"  # the static file, at the sweep's end
        before = curves.stat().st_mtime_ns if curves.exists() else None
        started = time.perf_counter()
        shown["run"].resume(check_data=False, executor=InProcessExecutor(ScriptedTrial(curve), args.concurrent))
        shown["run"].wait(report=None)
        resumed = time.perf_counter() - started
        redrawn = curves.exists() and curves.stat().st_mtime_ns != before
    refreshes = shown["refreshes"] or [(0.0, 0.0)]
    worst = max(refreshes)
    print(f"{args.trials} scripted trials, {args.epochs} epochs each, {args.concurrent} at once; "
          f"fastest of {args.repeat}")
    print(f"sweep without dashboard: {bare['sweep']:7.2f} s")
    print(f"sweep with dashboard:    {shown['sweep']:7.2f} s  ratio {shown['sweep'] / bare['sweep']:.3f} "
          "(goal: < 1.05)")
    print(f"dashboard build:         {shown['build']:7.3f} s")
    print(f"refreshes: {len(shown['refreshes'])}, worst {worst[0]:.3f} s ({worst[1]:.3f} s of it drawing), "
          f"worst without curves {max(total - drawing for total, drawing in refreshes):.3f} s, "
          f"mean {sum(total for total, _ in refreshes) / len(refreshes):.3f} s (goal: worst < 0.5 s)")
    print(f"parallel coordinates drawn {len(shown['curves'])} times, {sum(shown['curves']):.2f} s in all after "
          "the build")
    deltas = shown["deltas"] or [(0.0, 0, 0)]
    print(f"live chart: {len(shown['deltas'])} deltas, {sum(p for _, p, _ in deltas)} points sent, largest "
          f"{max(b for _, _, b in deltas) / 1024:.1f} KiB, mean {sum(b for _, _, b in deltas) / len(deltas) / 1024:.1f} "
          f"KiB; slowest update {max(t for t, _, _ in deltas) * 1000:.1f} ms")
    print(f"resume() of the finished run: {resumed:.2f} s (goal: < 2 s); learning_curves.png redrawn: {redrawn}")


if __name__ == "__main__":
    main()
