"""YOLOv5 release weights downloaded into the torch hub cache, from a server started on 127.0.0.1."""

import functools
import hashlib
import http.server
import socket
import threading

import pytest
import torch

from automl_nb.errors import TrialError
from automl_nb.models.registry import build_model
from automl_nb.models.yolo import YoloV5, download

WEIGHT = "model.6.m.0.cv2.conv.weight"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A local 'release host' serving yolov5s.pt (a small model's half-precision state dict); yields
    (base URL, the source model, the file's sha256)."""
    folder = tmp_path_factory.mktemp("release")
    (folder / "v7.0").mkdir()
    torch.manual_seed(3)
    source = YoloV5(num_classes=80, model_size="small")
    torch.save({k: v.half() for k, v in source.state_dict().items()}, folder / "v7.0" / "yolov5s.pt")
    digest = hashlib.sha256((folder / "v7.0" / "yolov5s.pt").read_bytes()).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v7.0", source, digest
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_a_release_file_with_the_pinned_sha256_is_downloaded_cached_and_loaded(release, cache, monkeypatch, capfd):
    url, source, digest = release
    monkeypatch.setenv(download.URL_VARIABLE, url)
    monkeypatch.setitem(download.RELEASE_SHA256, "yolov5s.pt", digest)
    model = build_model("yolov5", num_classes=3, pretrained=True, model_size="small")
    assert hashlib.sha256((cache / "yolov5s.pt").read_bytes()).hexdigest() == digest
    assert torch.equal(model.state_dict()[WEIGHT], source.state_dict()[WEIGHT].half().float())
    assert "100%" in capfd.readouterr().err  # tqdm's progress bar
    monkeypatch.setenv(download.URL_VARIABLE, "http://127.0.0.1:9/nowhere")  # cached now: no download
    assert torch.equal(build_model("yolov5", num_classes=3, pretrained=True, model_size="small")
                       .state_dict()[WEIGHT], model.state_dict()[WEIGHT])


def test_a_wrong_sha256_raises_and_leaves_nothing_in_the_cache(release, cache, monkeypatch):
    url, _, digest = release
    monkeypatch.setenv(download.URL_VARIABLE, url)
    monkeypatch.setitem(download.RELEASE_SHA256, "yolov5s.pt", "0" * 64)
    with pytest.raises(TrialError, match=r"yolov5s\.pt: the downloaded file's sha256 differs from the pinned 0+;"):
        build_model("yolov5", num_classes=3, pretrained=True, model_size="small")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_missing_file_on_the_host_is_a_clear_error(release, cache, monkeypatch):
    monkeypatch.setenv(download.URL_VARIABLE, release[0] + "/missing")
    with pytest.raises(TrialError, match=r"could not download YOLOv5 weights from .*/missing/yolov5s\.pt.*404"):
        build_model("yolov5", num_classes=3, pretrained=True, model_size="small")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_an_unreachable_host_gives_the_offline_error(cache, monkeypatch):
    with socket.socket() as closed:  # a port that nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv(download.URL_VARIABLE, f"http://127.0.0.1:{port}/v7.0")
    with pytest.raises(TrialError, match=rf"not in the local cache .* and http://127.0.0.1:{port}/v7.0/yolov5s.pt "
                                         r"cannot be reached. Either set `use_pretrained_model: false`"):
        build_model("yolov5", num_classes=3, pretrained=True, model_size="small")


def test_the_release_url_defaults_to_the_v7_release(monkeypatch):
    monkeypatch.delenv(download.URL_VARIABLE, raising=False)
    expected = "https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5m.pt"
    assert download.release_url("yolov5m.pt") == expected
    assert set(download.RELEASE_SHA256) == {"yolov5s.pt", "yolov5m.pt", "yolov5l.pt", "yolov5x.pt"}
