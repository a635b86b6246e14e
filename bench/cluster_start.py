"""Cluster start: how long a sweep waits for its workers, forked from a fork server or spawned.

A notebook runs one ``%%automl`` cell after another, each starting a LocalCluster. Each worker
must import torch and torchvision before its first trial can start. With the fork server
(``cluster.FORK_SERVER``, Linux) that import happens once per process, in the fork server; with
spawned workers, in every worker of every cluster. This script starts ``--clusters`` clusters of
``--workers`` workers one after another in a fresh process per way, and times each start up to
the moment every worker has run a task that needs torch and torchvision, plus the close.

    python bench/cluster_start.py [--clusters 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def worker_ready() -> bool:
    """The first task of a trial: torch and torchvision loaded in the worker."""
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    return True


def starts(fork_server: bool, clusters: int, workers: int) -> list[float]:
    """Seconds from each cluster's start to every worker ready, and its close, in this process."""
    import automl_nb.cluster as cluster

    cluster.FORK_SERVER = fork_server
    seconds = []
    for index in range(clusters):
        began = time.perf_counter()
        handle = cluster.local_cluster(workers)
        futures = [handle.client.submit(worker_ready, pure=False, key=f"ready-{index}-{w}",
                                        workers=[address], allow_other_workers=False)
                   for w, address in enumerate(handle.client.scheduler_info()["workers"])]
        handle.client.gather(futures)
        handle.close()
        seconds.append(time.perf_counter() - began)
    return seconds


def measure(way: str, clusters: int, workers: int) -> list[float]:
    """Run :func:`starts` in a fresh Python (a fork server lives as long as its process)."""
    code = (f"import json, sys; sys.path.insert(0, {sys.path[0]!r}); from cluster_start import starts; "
            f"print(json.dumps(starts({way == 'fork server'}, {clusters}, {workers})))")
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = {way: measure(way, args.clusters, args.workers) for way in ("spawn", "fork server")}
    print(f"{args.clusters} clusters of {args.workers} workers, one after another (seconds to ready + close)")
    print(f"{'way':<12} {'first':>7} {'later (median)':>15} {'all':>7}")
    for way, seconds in results.items():
        later = statistics.median(seconds[1:]) if len(seconds) > 1 else float("nan")
        print(f"{way:<12} {seconds[0]:>7.2f} {later:>15.2f} {sum(seconds):>7.2f}")
    spawn, fork = results["spawn"], results["fork server"]
    if len(spawn) > 1:
        print(f"later clusters: fork server {statistics.median(spawn[1:]) / statistics.median(fork[1:]):.1f}x faster; "
              f"all {args.clusters}: {sum(spawn) / sum(fork):.1f}x")


if __name__ == "__main__":
    main()
