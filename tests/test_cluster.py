"""Making and connecting the Dask cluster, with real LocalClusters on 127.0.0.1."""

import logging
import os
import socket
import sys

import pytest

from automl_nb.cluster import FORK_SERVER, GPU, connect, local_cluster
from automl_nb.errors import AutoMLError


def worker_environment():
    return {key: os.environ.get(key) for key in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}


def test_cpu_cluster_has_one_single_threaded_worker_per_concurrent_trial(monkeypatch):
    # As a notebook kernel may have them, e.g. from an earlier Dask cluster: ours must win.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    handle = local_cluster(2, gpus=0, cpus=4)
    try:
        workers = handle.client.scheduler_info()["workers"].values()
        assert len(workers) == 2 and all(w["nthreads"] == 1 and not w["resources"] for w in workers)
        assert handle.threads_per_trial == 2 and handle.trial_resources is None
        # torch on each worker gets its share of cores, and glibc keeps its default trimming.
        for env in handle.client.run(worker_environment).values():
            assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "2"}
    finally:
        handle.close()
    assert handle.cluster.status.name == "closed"
    assert worker_environment() == {"MALLOC_TRIM_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}  # ours untouched


def worker_start():
    return os.environ.get("AUTOML_NB_TEST_SETTING"), "torch" in sys.modules


@pytest.mark.skipif(not FORK_SERVER, reason="workers fork from a fork server on Linux only")
def test_workers_start_with_torch_loaded_and_the_environment_as_it_is_at_each_start(monkeypatch):
    # Forked from the fork server that imported torch once; yet a setting changed between two
    # clusters (as a notebook user might, between two %%automl cells) reaches the second's workers.
    for setting in ("first", "second"):
        monkeypatch.setenv("AUTOML_NB_TEST_SETTING", setting)
        handle = local_cluster(1, gpus=0, cpus=1)
        try:
            assert list(handle.client.run(worker_start).values()) == [(setting, True)]
        finally:
            handle.close()


def test_gpu_cluster_has_one_worker_per_gpu_advertising_it():
    handle = local_cluster(8, gpus=2, cpus=2)
    try:
        workers = handle.client.scheduler_info()["workers"].values()
        assert len(workers) == 2 and all(w["resources"] == {GPU: 1} for w in workers)
        assert handle.uses_gpus and handle.trial_resources == {GPU: 1}
    finally:
        handle.close()


def test_a_gpu_cluster_for_ddp_trials_shares_the_gpus_out_between_its_workers():
    handle = local_cluster(2, gpus=4, cpus=2, distributed=True)
    try:
        workers = handle.client.scheduler_info()["workers"].values()
        assert len(workers) == 2 and all(w["resources"] == {GPU: 2} for w in workers)
        assert handle.trial_resources == {GPU: 2}
    finally:
        handle.close()


@pytest.mark.slow
def test_a_scheduler_address_is_used_and_left_running():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR,
                      resources={GPU: 2}) as theirs:
        handle = connect(theirs.scheduler_address)
        assert not handle.owned and handle.uses_gpus  # learnt from the workers' resources
        handle.close()
        with Client(theirs) as client:
            assert len(client.scheduler_info()["workers"]) == 1  # our close did not stop their cluster
            given = connect(client=client)
            given.close()
            assert given.trial_resources == {GPU: 1}  # a trial on one GPU: its worker may run two
            # A DDP trial asks for all its worker's GPUs, so two never train on the same ones.
            assert connect(client=client, distributed=True).trial_resources == {GPU: 2}
            assert client.status == "running"  # a client the user gave is not ours to close


@pytest.mark.slow
def test_an_unreachable_scheduler_is_named_in_the_error(monkeypatch):
    monkeypatch.setattr("automl_nb.cluster.CONNECT_TIMEOUT", "1s")  # nobody answers: no need to wait 10 s
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AutoMLError, match=f"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'"):
        connect(f"tcp://127.0.0.1:{port}")


@pytest.mark.parametrize("visible, expected", [(None, 4), ("0,2", 2), ("", 0), ("-1", 0), ("1,-1,2", 1),
                                               ("0,1,2,3,4,5", 4)])
def test_gpus_are_counted_from_the_driver_without_torch(monkeypatch, visible, expected):
    import sys

    from automl_nb import cluster

    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a notebook kernel
    monkeypatch.setattr(os.path, "isdir", lambda path: path == "/proc/driver/nvidia/gpus")
    monkeypatch.setattr(os, "listdir", lambda path: ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0"])
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert cluster.gpu_count() == expected
