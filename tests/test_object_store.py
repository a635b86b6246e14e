"""Whole-object reads and writes on a real S3-compatible server (moto's, on 127.0.0.1)."""

import threading

BUCKET = "object-store-bucket"


def test_a_download_of_an_object_rewritten_meanwhile_reads_it_again(s3_server, tmp_path):
    """A trial rewrites its metrics.jsonl at every evaluation while other machines download it: s3fs
    reads with If-Match on the ETag it opened, and a rewrite between the two fails that read."""
    from automl_nb.object_store import RemoteFolder

    s3_server.mkdir(BUCKET)
    folder = RemoteFolder(f"s3://{BUCKET}/run")
    versions = [bytes([n]) * 1000 for n in range(50)]
    s3_server.pipe_file(f"{BUCKET}/run/metrics.jsonl", versions[0])
    stop = threading.Event()

    def rewrite():  # an evaluation every 30 ms: far faster than any trial
        while not stop.is_set():
            for data in versions:
                s3_server.pipe_file(f"{BUCKET}/run/metrics.jsonl", data)
                stop.wait(0.03)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(100):
            folder.get("metrics.jsonl", tmp_path / "metrics.jsonl")
            assert (tmp_path / "metrics.jsonl").read_bytes() in versions  # whole, one version
    finally:
        stop.set()
        writer.join()
        s3_server.rm(BUCKET, recursive=True)
