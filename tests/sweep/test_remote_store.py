"""A run on an S3 URL: a real S3-compatible server (moto's) on 127.0.0.1, a real 2-worker LocalCluster
whose workers stage trials in their own folders, and a driver that works on its own local mirror.
Nothing is shared between them but the bucket: the tests read the bucket itself to see what reached it."""

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from automl_nb.data.synthetic import make_dataset  # noqa: E402
from automl_nb.errors import AutoMLError  # noqa: E402
from automl_nb.spec import load_job  # noqa: E402
from automl_nb.sweep import load_run  # noqa: E402
from automl_nb.sweep.lease import LeaseHeldError, LeaseTimes  # noqa: E402
from automl_nb.object_store import check_url  # noqa: E402
from automl_nb.sweep.remote_trial import RemoteLease  # noqa: E402
from automl_nb.testing import ScriptedTrial  # noqa: E402

BUCKET = "runs-bucket"
JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 3, max_concurrent_trials: {concurrent}}}
sweep: {{sampling_algorithm: grid}}
search_space:
  - model_name: {{type: choice, values: [resnet18]}}
    learning_rate: {{type: choice, values: [0.05, 0.04, 0.03]}}
training_parameters: {{number_of_epochs: 4, use_pretrained_model: false}}
"""


@pytest.fixture(scope="module")
def s3(s3_server):
    """The S3 server with an empty bucket."""
    s3_server.mkdir(BUCKET)
    yield s3_server
    s3_server.rm(BUCKET, recursive=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    make_dataset("image_classification", 12, 16, folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def workers(s3, tmp_path_factory):
    """A LocalCluster of 2 worker processes; each one's folder (its staging) lies under ``root``."""
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("workers")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, local_directory=str(root),
                           dashboard_address=None)
    client = Client(cluster)
    client.root = root
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def mirrors(tmp_path, monkeypatch):
    """Points the driver's mirrors at a fresh folder; call it again for another fresh one."""
    count = iter(range(100))

    def fresh() -> Path:
        folder = tmp_path / f"driver-mirrors-{next(count)}"
        monkeypatch.setenv("AUTOML_NB_RUN_MIRRORS", str(folder))
        return folder

    fresh()
    return fresh


class RecordsWhereItRan:
    """A trial function that notes where its trial ran (folder, pid, image cache) in ``where.json``, then runs ``inner``."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, trial, reporter):
        folder = Path(trial.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "where.json").write_text(json.dumps({"folder": str(folder), "pid": os.getpid(),
                                                       "image_cache_url": trial.image_cache_url}))
        return self.inner(trial, reporter)


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def objects(fs, url: str) -> set[str]:
    root = url.split("://", 1)[1]
    return {path[len(root) + 1:] for path in fs.find(root)}


def bucket_json(fs, url: str, name: str):
    return json.loads(fs.cat_file(f"{url.split('://', 1)[1]}/{name}"))


def submit(data, url, workers, concurrent, script):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    job = load_job(JOB.format(data=data, concurrent=concurrent))
    return job.submit(url, client=workers, check_data=False, trial_function=RecordsWhereItRan(script))


@pytest.mark.slow
def test_a_sweep_on_s3_reaches_the_bucket_and_reads_back_from_a_fresh_mirror(s3, data, workers, mirrors):
    url = f"s3://{BUCKET}/runs/sweep"
    run = submit(data, url, workers, 2, ScriptedTrial([0.1, 0.2, 0.3, 0.4]))
    driver_mirror = run.folder
    assert run.url == url and str(driver_mirror).startswith(os.environ["AUTOML_NB_RUN_MIRRORS"])
    assert run.wait(120) == "Completed"
    assert [t.status for t in run.trials()] == ["Completed"] * 3

    stored = objects(s3, url)
    assert {"job.yaml", "run.json", "leaderboard.csv", "learning_curves.png"} <= stored
    for trial in ("0", "1", "2"):
        # The trials' own files reached the bucket; the completed trials left no resume point nor lease.
        assert {f"trials/{trial}/{name}" for name in ("trial.json", "params.json", "metrics.jsonl", "status.json",
                                                      "model_best.pt", "where.json")} <= stored
        assert not {f"trials/{trial}/last.pt", f"trials/{trial}/lease.json"} & stored
        assert [row["epoch"] for row in run.metrics(trial)] == [1, 2, 3, 4]
        assert bucket_json(s3, url, f"trials/{trial}/status.json")["status"] == "Completed"
        # Each trial ran in a worker process, in that worker's own staging folder, not in the driver's mirror.
        where = bucket_json(s3, url, f"trials/{trial}/where.json")
        assert where["pid"] != os.getpid()
        assert Path(where["folder"]).is_relative_to(workers.root) and "automl_nb-staging" in where["folder"]
        assert not Path(where["folder"]).exists()  # staging is removed once everything is uploaded
        assert where["image_cache_url"] == f"{url}/image-cache"  # the run's trials share one image cache
    assert bucket_json(s3, url, "run.json")["status"] == "Completed"

    # Another machine's view: a fresh mirror built from the bucket alone reads the same run; it leaves
    # the trials' image cache on the store.
    s3.pipe_file(f"{BUCKET}/runs/sweep/image-cache/a-64px/urls.json", b"[]")
    fresh = mirrors()
    again = load_run(url)
    assert again.folder.is_relative_to(fresh) and again.folder != driver_mirror
    assert again.status == "Completed"
    assert again.leaderboard().equals(run.leaderboard())
    best = "trials/0/model_best.pt"
    assert (again.folder / best).read_bytes() == (driver_mirror / best).read_bytes()
    assert not (again.folder / "image-cache").exists()

    with pytest.raises(AutoMLError, match="already holds a run"):
        submit(data, url, workers, 2, ScriptedTrial([0.5]))


@pytest.mark.slow
def test_an_interrupted_run_on_s3_resumes_from_the_url_and_finishes_only_what_remained(s3, data, workers, mirrors):
    url = f"s3://{BUCKET}/runs/resumed"
    reported = threading.Event()
    script = ScriptedTrial([0.1, 0.2, 0.3, 0.4], seconds_per_epoch=0.3)
    run = submit(data, url, workers, 1, script)
    run.subscribe(lambda event: reported.set()
                  if event["kind"] == "report" and event["trial"] == "1" and event["epoch"] >= 2 else None)
    assert reported.wait(120)
    run.cancel()
    assert run.wait(120) == "Canceled"
    # The canceled trial stops at its next evaluation and uploads its files a last time, its resume point too.
    wait_until(lambda: "trials/1/lease.json" not in objects(s3, url))
    assert bucket_json(s3, url, "trials/1/status.json")["status"] == "Canceled"
    assert "trials/1/last.pt" in objects(s3, url)
    first_metrics = s3.cat_file(f"{BUCKET}/runs/resumed/trials/0/metrics.jsonl")

    mirrors()  # the resuming process has nothing but the URL
    resumed = load_run(url)
    assert resumed.status == "Canceled"
    assert resumed.resume(client=workers, check_data=False,
                          trial_function=RecordsWhereItRan(script)).wait(120) == "Completed"
    first, second, third = resumed.trials()
    assert [t.status for t in (first, second, third)] == ["Completed"] * 3
    assert first.attempts == 1  # finished before the interruption: not run again
    assert s3.cat_file(f"{BUCKET}/runs/resumed/trials/0/metrics.jsonl") == first_metrics
    assert "resumed from its last checkpoint" in second.notes
    assert [row["epoch"] for row in resumed.metrics("1")] == [1, 2, 3, 4]
    assert bucket_json(s3, url, "run.json")["sessions"] == 2
    assert "trials/1/last.pt" not in objects(s3, url)


def test_the_lease_object_keeps_a_second_copy_out_until_the_first_goes_stale(s3):
    times = LeaseTimes(renew=0.1, stale=0.6, wait=0)
    folder = f"s3://{BUCKET}/runs/leased/trials/0"
    first = RemoteLease(folder, times, holder="first")
    first.acquire()
    with pytest.raises(LeaseHeldError, match="first"):
        RemoteLease(folder, times, holder="second").acquire()
    first._stop.set()  # the first copy's process hangs: its heartbeat stops
    first._renewer.join()
    second = RemoteLease(folder, LeaseTimes(renew=0.1, stale=0.6, wait=5), holder="second")
    second.acquire()  # once stale, taken over with a conditional PUT on the stale version
    assert second.read()["owner"] == second.record["owner"]
    # The first copy wakes and renews on the version it last wrote: refused, so it knows it lost the folder.
    first._stop.clear()
    first._renewer = threading.Thread(target=first._renew_loop)
    first._renewer.start()
    assert first.lost.wait(5)
    first.release()  # not its lease any more: left alone
    assert second.read()["owner"] == second.record["owner"]
    second.release()
    assert not s3.exists(f"{BUCKET}/runs/leased/trials/0/lease.json")


@pytest.mark.parametrize("url, message", [
    ("ftp://host/runs/x", "'ftp://' is not a store a run can live on; allowed: s3://"),
    ("s3://", "no bucket"),
])
def test_a_url_that_is_no_run_store_is_refused_naming_it(url, message):
    with pytest.raises(AutoMLError, match="output: ") as error:
        check_url(url)
    assert message in str(error.value) and repr(url) in str(error.value)


def test_a_store_whose_package_is_missing_says_which_to_install():
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(AutoMLError, match=r"needs the gcsfs package.*pip install 'automl_nb\[remote\]'"):
        check_url("gs://bucket/runs/x")


def test_load_run_of_a_url_without_a_run_says_so(s3, mirrors):
    with pytest.raises(AutoMLError, match="is not a run"):
        load_run(f"s3://{BUCKET}/runs/nothing-here")


def test_submit_to_a_bucket_that_is_not_there_says_so_and_writes_nothing(s3, data, mirrors):
    job = load_job(JOB.format(data=data, concurrent=1))
    with pytest.raises(AutoMLError, match="output: 's3://no-such-bucket/runs/x': there is no bucket"):
        job.submit("s3://no-such-bucket/runs/x", check_data=False)
    assert not s3.exists("no-such-bucket")


def test_an_in_process_executor_stages_trials_of_a_run_on_s3_too(s3, data, mirrors):
    from automl_nb.sweep.executor import InProcessExecutor

    url = f"s3://{BUCKET}/runs/in-process"
    job = load_job(JOB.format(data=data, concurrent=1).replace("max_trials: 3", "max_trials: 1"))
    run = job.submit(url, check_data=False, executor=InProcessExecutor(ScriptedTrial([0.3, 0.6])))
    assert run.wait(60) == "Completed"
    stored = objects(s3, url)
    assert {"trials/0/metrics.jsonl", "trials/0/model_best.pt", "trials/0/status.json"} <= stored
    assert "trials/0/last.pt" not in stored
    assert run.best_trial.best_metric == 0.6 and run.best_model_path.exists()


def test_an_export_into_a_trial_of_a_run_on_s3_goes_up_to_the_bucket(s3, data, mirrors, monkeypatch):
    import automl_nb.export.trial as export
    from automl_nb.sweep.executor import InProcessExecutor

    def fake_export(folder, output, **options):  # the ONNX export itself is tested in tests/export
        (Path(folder) / "onnx").mkdir()
        for name in ("model.onnx", "parity.json"):
            (Path(folder) / "onnx" / name).write_text(name)
        return "exported"

    monkeypatch.setattr(export, "export_trial", fake_export)
    url = f"s3://{BUCKET}/runs/exported"
    job = load_job(JOB.format(data=data, concurrent=1).replace("max_trials: 3", "max_trials: 1"))
    run = job.submit(url, check_data=False, executor=InProcessExecutor(ScriptedTrial([0.3])))
    assert run.wait(60) == "Completed"
    assert export.export_run(run) == "exported"
    assert {"trials/0/onnx/model.onnx", "trials/0/onnx/parity.json"} <= objects(s3, url)
    assert not [name for name in run.store.remote.pull(everything=True) if "onnx" in name]  # not downloaded back
    mirrors()
    assert (load_run(url).folder / "trials/0/onnx/model.onnx").read_text() == "model.onnx"  # another machine's view


def test_another_process_steers_a_run_on_s3_through_a_request_object_of_its_own(s3, data, mirrors):
    from automl_nb.sweep.executor import InProcessExecutor
    from automl_nb.widgets.dashboard import SweepDashboard

    url = f"s3://{BUCKET}/runs/steered"
    job = load_job(JOB.format(data=data, concurrent=1).replace("max_trials: 3", "max_trials: 1")
                   .replace("number_of_epochs: 4", "number_of_epochs: 60"))
    run = job.submit(url, check_data=False, executor=InProcessExecutor(ScriptedTrial([0.2], seconds_per_epoch=0.1)))
    wait_until(lambda: run.metrics("0"))  # the trial reports
    mirrors()
    other = load_run(url)  # another process: its own mirror, and it does not drive the run
    assert other.folder != run.folder and not other.running
    dashboard = SweepDashboard(other)
    assert dashboard.refresh().rows[0].status == "Running"
    other.stop_trial("0")
    (request,) = [name for name in objects(s3, url) if name.startswith("steering/")]
    assert run.wait(60) in ("Completed", "Canceled")
    # The other process's dashboard catches up with the store at its refreshes, as its mirror does.
    wait_until(lambda: dashboard._step() is not None and dashboard.snapshot.rows[0].status == "Canceled")
    assert other.trials()[0].status == "Canceled"
    dashboard.close()
    (trial,) = run.trials()
    assert trial.status == "Canceled" and "stopped by the user" in trial.notes
    assert len(run.metrics("0")) < 60
    # The driver merged the request into its log, applied it, and uploaded both.
    request_id = request.removeprefix("steering/").removesuffix(".json")
    logged = [json.loads(line) for line in s3.cat_file(f"{BUCKET}/runs/steered/steering.jsonl").splitlines()]
    assert [row["id"] for row in logged] == [request_id]
    assert bucket_json(s3, url, "run.json")["steering"][request_id]["outcome"] == "applied"


def test_a_mirror_a_process_drives_from_is_not_caught_up_by_another_reader_of_it(s3, tmp_path):
    """Two processes of one machine share a run's mirror: a reader's catch-up must not download the store's
    older copies over the files the driver has not uploaded yet."""
    from automl_nb.object_store import RemoteFolder
    from automl_nb.sweep.remote import MirrorSync

    url = f"s3://{BUCKET}/runs/shared-mirror"
    s3.pipe_file(f"{BUCKET}/runs/shared-mirror/run.json", b'{"status": "Running"}')
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "run.json").write_text('{"status": "Completed"}')  # the driver's news, not uploaded yet
    driver, reader = MirrorSync(RemoteFolder(url), mirror), MirrorSync(RemoteFolder(url), mirror)
    driver.start(seconds=3600)  # drives (its sync thread waits an hour)
    assert reader.catch_up() == [] and reader.pull(everything=True) == []  # a dashboard's, load_run's
    assert "Completed" in (mirror / "run.json").read_text() and reader.driven_here()
    with pytest.raises(AutoMLError, match="another process of this machine drives the run from its mirror"):
        reader._take_driving_lock(wait_s=0.2)  # a second driver of one mirror says so, never hangs
    driver.stop(pull=False, ended=True)  # uploads the news, and the drive is over
    reader._caught_up = -1e9
    assert reader.catch_up() == ["run.json"] and "Completed" in (mirror / "run.json").read_text()
    assert not reader.driven_here()
