"""Quality on real data: automl_nb's defaults, its AutoMode and a hand-written loop, per dataset.

For each real dataset of :data:`automl_nb.data.real.REAL_DATASETS` (images that ship inside
scikit-learn and scikit-image: no download), with a fixed train/valid split:

(a) ``defaults``: one trial at the spec's defaults, but for ``use_pretrained_model: false`` (no
    weights can be fetched here) and the first model AutoMode tries on a CPU (the spec's default
    models, seresnext and the ResNet-50 detectors, do not finish an epoch in the budget on a CPU);
(b) ``automode``: AutoMode (``max_trials > 1``, no search space), ``use_pretrained_model: false``
    and nothing else set, within the budget;
(c) ``baseline``: the plain torchvision loop of ``bench/quality/baseline.py``, within the budget.

Every arm gets the same wall-clock budget (``--minutes``, default 5: 10 CPU-minutes on this
2-core machine) and is scored on the same validation images by the product's metric code. The
results go to ``results.json`` (arms already there are kept unless ``--again``), a Markdown table
(``results.md``) and a bar chart (``results.png``) in ``--out``.

    python bench/quality/run.py [--datasets digits,faces] [--arms automode,baseline] [--minutes 5]
                                [--out bench/quality/results] [--again]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import train_baseline  # noqa: E402

from automl_nb._atomic import atomic_write_json  # noqa: E402
from automl_nb.data.real import REAL_DATASETS, make_real_dataset  # noqa: E402
from automl_nb.spec import PRIMARY_METRICS, load_job  # noqa: E402
from automl_nb.sweep.automode import portfolio_models  # noqa: E402

ARMS = ("defaults", "automode", "baseline")
AUTOMODE_TRIALS = 12  # a ceiling: the budget decides how many run
CONCURRENT_TRIALS = 2


def prepare(name: str, root: Path) -> dict[str, Path]:
    """Both splits of dataset ``name`` under ``root/name`` (written once)."""
    paths = {}
    for split in ("train", "valid"):
        folder = root / name / split
        jsonl = folder / "labels.jsonl"
        if not jsonl.exists():
            make_real_dataset(name, folder, split)
        paths[split] = jsonl
    return paths


def job_yaml(task: str, paths: dict[str, Path], arm: str, minutes: int) -> str:
    """The job of arm ``defaults`` or ``automode``: what a user would write."""
    lines = [f"task: {task}", "target_column_name: label",
             f"training_data: {{path: {paths['train'].parent}, type: mltable}}",
             f"validation_data: {{path: {paths['valid'].parent}, type: mltable}}",
             "training_parameters:", "  use_pretrained_model: false"]
    if arm == "defaults":
        lines += [f"  model_name: {portfolio_models(task, n_images=1000, device='cpu')[0]}",
                  f"limits: {{max_trials: 1, timeout_minutes: {minutes}}}"]
    else:
        lines += [f"limits: {{max_trials: {AUTOMODE_TRIALS}, max_concurrent_trials: {CONCURRENT_TRIALS}, "
                  f"timeout_minutes: {minutes}}}"]
    return "\n".join(lines) + "\n"


def run_product(task: str, paths: dict[str, Path], arm: str, minutes: int, folder: Path) -> dict:
    """One arm through automl_nb, as a user runs it; its best metric and what it ran."""
    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "job.yml"
    job_file.write_text(job_yaml(task, paths, arm, minutes))
    started = time.monotonic()
    run = load_job(job_file).submit(folder / f"run-{int(time.time())}")
    status = run.wait()
    seconds = time.monotonic() - started
    best = run.best_trial
    trials = run.trials()
    return {"metric": best.best_metric if best else None, "seconds": seconds, "status": status,
            "trials": len(trials), "epochs": sum(len(run.metrics(t.trial_id)) for t in trials),
            "best": dict(best.parameters) if best else None, "run": str(run.folder)}


def run_arm(name: str, arm: str, paths: dict[str, Path], minutes: int, out: Path) -> dict:
    task = REAL_DATASETS[name][0]
    if arm == "baseline":
        result = train_baseline(task, paths["train"], paths["valid"], seconds_budget=minutes * 60, threads=2)
        result = {**result, "status": "Completed"}
    else:
        result = run_product(task, paths, arm, minutes, out / "runs" / name / arm)
    return {"dataset": name, "task": task, "arm": arm, "metric_name": PRIMARY_METRICS[task],
            "budget_minutes": minutes, **result}


def _score(result: dict) -> float:
    """An arm's metric; 0 when it finished no epoch (no model to use)."""
    return 0.0 if result["metric"] is None else result["metric"]


def write_table(results: dict, out: Path) -> str:
    """``results.md``: one row per dataset, metric and minutes per arm."""
    head = ("| dataset | task | metric | defaults | AutoMode | hand-written | AutoMode - hand-written |"
            " AutoMode - defaults |\n|---|---|---|---|---|---|---|---|\n")
    rows, gaps = [], {}
    for name in REAL_DATASETS:
        arms = {arm: results.get(f"{name}/{arm}") for arm in ARMS}
        if not any(arms.values()):
            continue
        task = REAL_DATASETS[name][0]

        def cell(arm):
            r = arms[arm]
            if not r:
                return "-"
            shown = "no epoch done" if r["metric"] is None else f"{r['metric']:.3f}"
            return f"{shown} ({r['seconds'] / 60:.1f} min)"

        def gap(a, b):
            if not (arms[a] and arms[b]):
                return "-"
            points = 100 * (_score(arms[a]) - _score(arms[b]))
            gaps.setdefault((a, b), []).append(points)
            return f"{points:+.1f} pt"

        rows.append(f"| {name} | {task.replace('image_', '')} | {PRIMARY_METRICS[task]} | {cell('defaults')} | "
                    f"{cell('automode')} | {cell('baseline')} | {gap('automode', 'baseline')} | "
                    f"{gap('automode', 'defaults')} |")
    means = {pair: f"{sum(points) / len(points):+.1f} pt" for pair, points in gaps.items()}
    rows.append(f"| mean | | | | | | {means.get(('automode', 'baseline'), '-')} | "
                f"{means.get(('automode', 'defaults'), '-')} |")
    table = head + "\n".join(rows) + "\n\nAn arm that finished no epoch in the budget gave the user no model: it counts as 0.\n"
    (out / "results.md").write_text(table)
    return table


def write_plot(results: dict, out: Path) -> None:
    """``results.png``: the three arms side by side per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in REAL_DATASETS if any(f"{n}/{a}" in results for a in ARMS)]
    fig, ax = plt.subplots(figsize=(1.8 * len(names) + 2, 3.6))
    width = 0.27
    for i, (arm, label) in enumerate(zip(ARMS, ("defaults", "AutoMode", "hand-written"))):
        values = [(results.get(f"{n}/{arm}") or {}).get("metric") or 0.0 for n in names]
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label)
    ax.set_xticks(range(len(names)), [f"{n}\n{PRIMARY_METRICS[REAL_DATASETS[n][0]]}" for n in names])
    ax.set_ylim(0, 1)
    ax.set_ylabel("validation metric")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Real data, same wall-clock budget per arm (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(REAL_DATASETS), help="comma-separated names")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated: " + ", ".join(ARMS))
    parser.add_argument("--minutes", type=int, default=5, help="wall-clock budget per arm (default 5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--again", action="store_true", help="rerun arms that have results")
    args = parser.parse_args(argv)
    names, arms = args.datasets.split(","), args.arms.split(",")
    unknown = [n for n in names if n not in REAL_DATASETS] + [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown dataset or arm: {', '.join(unknown)}; allowed datasets: {', '.join(REAL_DATASETS)}; "
                     f"arms: {', '.join(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in names:
        paths = prepare(name, args.out / "data")
        for arm in arms:
            key = f"{name}/{arm}"
            if key in results and not args.again:
                continue
            print(f"{key}: running ({args.minutes} min budget)...", flush=True)
            results[key] = run_arm(name, arm, paths, args.minutes, args.out)
            print(f"{key}: {results[key]['metric_name']} {results[key]['metric']} in "
                  f"{results[key]['seconds']:.0f} s", flush=True)
            atomic_write_json(results_file, results)
    print(write_table(results, args.out))
    write_plot(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
