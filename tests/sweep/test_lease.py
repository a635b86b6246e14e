"""The trial folder's lease: one copy writes a trial folder at a time (no Dask, no training)."""

import json
import subprocess
import sys
import threading
import time

import pytest

from automl_nb.sweep.lease import LEASE, Lease, LeaseHeldError, LeaseTimes

QUICK = LeaseTimes(renew=0.05, stale=0.5, wait=0.2)


def test_a_second_copy_is_kept_out_while_the_first_renews_its_lease(tmp_path):
    first = Lease(tmp_path, LeaseTimes(renew=0.05, stale=1.0, wait=0), holder="worker A")
    first.acquire()
    try:
        time.sleep(1.2)  # past the stale limit: only the renewals keep it held
        with pytest.raises(LeaseHeldError, match=r"still writing its folder \(pid \d+ on .* \(worker A\), "
                                                 r"heartbeat \d+ s ago\); waited 0.2 s"):
            Lease(tmp_path, QUICK).acquire()
        assert json.loads((tmp_path / LEASE).read_text())["owner"] == first.record["owner"]
    finally:
        first.release()
    assert not (tmp_path / LEASE).exists()
    assert [path.name for path in tmp_path.iterdir()] == []  # nothing left aside either


def test_a_waiting_copy_takes_the_lease_once_it_is_released(tmp_path):
    first = Lease(tmp_path, QUICK)
    first.acquire()
    threading.Timer(0.2, first.release).start()
    second = Lease(tmp_path, LeaseTimes(renew=0.05, stale=0.5, wait=5))
    started = time.monotonic()
    with second:
        waited = time.monotonic() - started
        assert json.loads((tmp_path / LEASE).read_text())["owner"] == second.record["owner"]
    assert 0.15 < waited < 2


def test_a_stale_lease_is_taken_over_and_its_holder_learns_it(tmp_path):
    first = Lease(tmp_path, QUICK)
    first.acquire()
    first._stop.set()  # its renewals stop, as when its host hangs...
    first._renewer.join()
    first._stop.clear()
    time.sleep(0.6)
    second = Lease(tmp_path, QUICK)
    second.acquire()  # ...so after the stale limit it is taken over
    try:
        first._renewer = threading.Thread(target=first._renew_loop, daemon=True)
        first._renewer.start()  # the old holder comes back, sees another owner, and stops writing
        assert first.lost.wait(2)
        assert json.loads((tmp_path / LEASE).read_text())["owner"] == second.record["owner"]
    finally:
        first.release()  # not its lease any more: left alone
        assert (tmp_path / LEASE).exists()
        second.release()


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LEASE).write_text(json.dumps({"owner": "x", "host": Lease(tmp_path).record["host"], "pid": pid,
                                              "heartbeat": time.time()}))
    started = time.monotonic()
    with Lease(tmp_path, LeaseTimes(renew=1, stale=60, wait=5)) as lease:
        assert time.monotonic() - started < 1  # no wait for a heartbeat 60 s stale
        assert json.loads((tmp_path / LEASE).read_text())["owner"] == lease.record["owner"]


def test_of_two_copies_racing_for_a_free_lease_exactly_one_wins(tmp_path):
    leases = [Lease(tmp_path, LeaseTimes(renew=1, stale=60, wait=0)) for _ in range(8)]
    won, barrier = [], threading.Barrier(len(leases))

    def take(lease):
        barrier.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseHeldError:
            pass

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == 1
    finally:
        for lease in won:
            lease.release()


@pytest.mark.parametrize("times", [dict(renew=0), dict(renew=1, stale=1), dict(wait=-1)])
def test_lease_times_are_checked(times):
    with pytest.raises(ValueError, match="LeaseTimes"):
        LeaseTimes(**times)
