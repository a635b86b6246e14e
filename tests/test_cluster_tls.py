"""A scheduler that requires TLS, with certificates made by the test (trustme) on 127.0.0.1:
``cluster:`` with its TLS files connects and runs a task; plain tcp:// is refused, and our
message says what to set."""

import logging

import pytest

from automl_nb.cluster import connect
from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec import image_classification, load_job

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, and one certificate for 127.0.0.1 that the scheduler, worker and client each present."""
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued = authority.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    return folder


@pytest.fixture(scope="module")
def tls_cluster(certificates):
    from distributed import LocalCluster
    from distributed.security import Security

    security = Security(tls_ca_file=str(certificates / "ca.pem"), tls_scheduler_cert=str(certificates / "cert.pem"),
                        tls_scheduler_key=str(certificates / "key.pem"), tls_worker_cert=str(certificates / "cert.pem"),
                        tls_worker_key=str(certificates / "key.pem"), tls_client_cert=str(certificates / "cert.pem"),
                        tls_client_key=str(certificates / "key.pem"), require_encryption=True)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://", host="127.0.0.1",
                      security=security, dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_a_cluster_mapping_with_tls_files_connects_and_runs_a_task(certificates, tls_cluster):
    job = image_classification(cluster={"address": tls_cluster.scheduler_address, "tls_ca_file": "ca.pem",
                                        "tls_client_cert": "cert.pem", "tls_client_key": "key.pem"},
                               base_dir=certificates)
    assert tls_cluster.scheduler_address.startswith("tls://127.0.0.1:")
    handle = connect(job.cluster_connection())
    try:
        assert handle.client.submit(sum, [1, 2, 3]).result(timeout=10) == 6
        assert handle.client.security.require_encryption
    finally:
        handle.close()


def test_plain_tcp_to_a_tls_scheduler_is_refused_with_what_to_set(tls_cluster):
    plain = tls_cluster.scheduler_address.replace("tls://", "tcp://")
    with pytest.raises(AutoMLError, match=f"cannot reach the Dask scheduler at '{plain}'") as refused:
        connect(plain)
    assert "set cluster: {address: tls://host:port, tls_ca_file, tls_client_cert, tls_client_key}" in str(refused.value)


def tls_mapping(**changes):
    return {"address": "tls://10.0.0.5:8786", "tls_ca_file": "ca.pem", "tls_client_cert": "cert.pem",
            "tls_client_key": "key.pem", **changes}


def test_a_tls_cluster_mapping_round_trips_and_resolves_its_files(certificates):
    (certificates / "job.yml").write_text("task: image_classification\ntraining_data: {path: data, type: mltable}\n"
                                          "cluster:\n  address: tls://10.0.0.5:8786\n  tls_ca_file: ca.pem\n"
                                          "  tls_client_cert: cert.pem\n")
    job = load_job(certificates / "job.yml")
    assert job.scheduler_address() == "tls://10.0.0.5:8786"
    assert job.cluster_connection() == {"address": "tls://10.0.0.5:8786", "tls_ca_file": str(certificates / "ca.pem"),
                                        "tls_client_cert": str(certificates / "cert.pem")}
    assert job.cluster == {"address": "tls://10.0.0.5:8786", "tls_ca_file": "ca.pem", "tls_client_cert": "cert.pem"}
    (certificates / "again.yml").write_text(job.dump())
    assert load_job(certificates / "again.yml") == job
    assert image_classification(cluster="tcp://h:8786").cluster_connection() == "tcp://h:8786"  # a plain address


@pytest.mark.parametrize("cluster, message", [
    (tls_mapping(tls_client_cert=None, tls_client_key=None),
     "cluster.tls_client_cert: missing for the encrypted address 'tls://10.0.0.5:8786'; allowed: set"),
    ({"address": "tls://10.0.0.5:8786"}, "cluster.tls_ca_file: missing for the encrypted address"),
    (tls_mapping(address="tcp://10.0.0.5:8786"),
     "cluster.address: 'tcp://10.0.0.5:8786' is not encrypted, but cluster.tls_ca_file is set; allowed: a tls://"),
    (tls_mapping(tls_client_key="nowhere.pem"),
     "cluster.tls_client_key: 'nowhere.pem' does not exist \\(looked for "),
    (tls_mapping(tls_ca_files="ca.pem"),
     "cluster.tls_ca_files: 'ca.pem': unknown cluster key; did you mean 'tls_ca_file'"),
    (tls_mapping(address=None), "cluster.address: missing; allowed: a Dask scheduler address"),
    ("10.0.0.5:8786",
     "cluster: '10.0.0.5:8786' is not allowed; allowed: a Dask scheduler address \\(tcp://host:8786\\)"),
])
def test_a_bad_cluster_is_refused_at_job_load_naming_the_key(certificates, cluster, message):
    with pytest.raises(SpecError, match=message):
        image_classification(cluster=cluster, base_dir=certificates)
