"""An HTTP image server on 127.0.0.1 and synthetic datasets served by it, for the cache tests."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from automl_nb.data.jsonl import write_jsonl
from automl_nb.data.mltable import load_records
from automl_nb.data.synthetic import make_dataset


class ImageServer:
    """Serves ``directory`` over HTTP in a thread; counts requests; can be slow or fail at first.

    Attributes:
        requests: path -> GET requests served (any status).
        delay_s: sleep before each answer (to make fills overlap or last).
        fail_first: path -> how many of its first requests answer 500.
        most_in_flight: the most requests answered at once so far.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.requests: Counter = Counter()
        self.delay_s = 0.0
        self.fail_first: dict[str, int] = {}
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                with server._lock:
                    server.requests[self.path] += 1
                    failing = server.fail_first.get(self.path, 0) >= server.requests[self.path]
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    if server.delay_s:
                        time.sleep(server.delay_s)
                finally:
                    # Counted out before answering: once the client has its answer it may send
                    # its next request before this thread would get here after sending.
                    with server._lock:
                        server.in_flight -= 1
                if failing:
                    self.send_error(500, "flaky")
                else:
                    super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def url(self, path: Path) -> str:
        return f"{self.base}/{Path(path).relative_to(self.directory).as_posix()}"

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def image_server(tmp_path):
    """A started :class:`ImageServer` over ``tmp_path / "served"``; stopped after the test."""
    (tmp_path / "served").mkdir()
    server = ImageServer(tmp_path / "served")
    yield server
    server.close()


def served_dataset(server: ImageServer, task: str, n: int, size: int, name: str = "data", seed: int = 0):
    """A synthetic dataset written under the server's folder, with a second JSONL of HTTP URLs.

    Returns:
        ``(local_jsonl, http_jsonl, local_records, http_records)``.
    """
    local_jsonl = make_dataset(task, n, size, server.directory / name, seed=seed)
    local = load_records(str(local_jsonl), task)
    remote = [dataclasses.replace(r, image_url=server.url(Path(r.image_url))) for r in local]
    http_jsonl = write_jsonl(remote, server.directory / name / "http.jsonl")
    return local_jsonl, Path(http_jsonl), local, load_records(str(http_jsonl), task)


@pytest.fixture
def serve_dataset(image_server):
    """:func:`served_dataset` on the test's :func:`image_server`."""
    return functools.partial(served_dataset, image_server)
