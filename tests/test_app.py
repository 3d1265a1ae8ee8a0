"""``lmnet app``: the web page driven with ``gradio_client`` on 127.0.0.1 (the cloud it serves is the one
``lmnet infer`` writes, over-limit uploads get a message, nothing else is served), its parts without
Gradio, the one-line hint when Gradio is missing, and a headless-Chromium screenshot of its 3D view
(``tools/app_check.py``). The Gradio tests skip where the ``app`` extra is not installed."""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from lmnet.app import AppRun, cloud_bytes, display_colours, serve
from lmnet.app.reconstruction import check_upload
from lmnet.app.ui import AppState, copy_examples
from lmnet.cli import main
from lmnet.data.inputs import prepare_image
from lmnet.errors import ConfigError, DataError, ResourceLimitError
from test_eval import tiny_project  # noqa: F401  (session fixture)
from test_published_runs import port_run  # noqa: F401  (an imported published-model run)

REPO = Path(__file__).resolve().parent.parent
HAS_GRADIO = importlib.util.find_spec("gradio") is not None and importlib.util.find_spec("gradio_client") is not None
needs_gradio = pytest.mark.skipif(not HAS_GRADIO, reason="gradio / gradio_client not installed (pip install lmnet[app])")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _photo(path: Path, size=(150, 90)) -> Path:
    """An RGBA photo: a two-colour box on a transparent background (its alpha is the mask)."""
    w, h = size
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[h // 5:-h // 5, w // 4:w // 2] = [200, 40, 30, 255]
    rgba[h // 5:-h // 5, w // 2:-w // 4] = [30, 90, 220, 255]
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _glb_points(path) -> np.ndarray:
    scene = trimesh.load(path, file_type="glb", process=False)
    (cloud,) = scene.geometry.values()
    return np.asarray(cloud.vertices, np.float32)


def _glb_colours(path) -> np.ndarray:
    (cloud,) = trimesh.load(path, file_type="glb", process=False).geometry.values()
    return np.asarray(cloud.colors)[:, :3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tiny_project, tmp_path_factory):
    """The app on the Variant II run of ``tiny_project``, 3 samples per photo, one example photo:
    ``(url, run, blocks)``."""
    if not HAS_GRADIO:
        pytest.skip("gradio / gradio_client not installed (pip install lmnet[app])")
    run, examples = tiny_project[2], tmp_path_factory.mktemp("examples")
    _photo(examples / "example.png")
    blocks, stop = serve(run, port=_free_port(), samples=3, examples=examples, block=False)
    yield blocks.local_url, run, blocks
    stop()


@pytest.fixture
def client(app_server, tmp_path):
    from gradio_client import Client

    return Client(app_server[0], verbose=False, download_files=str(tmp_path / "downloads"))


@needs_gradio
def test_the_uploaded_photo_gives_lmnet_infers_cloud(app_server, client, tmp_path):
    from gradio_client import handle_file

    _, run, blocks = app_server
    assert blocks.server_name == "127.0.0.1"
    photo = _photo(tmp_path / "chair.png")
    assert main(["infer", "--checkpoint", str(run), "--images", str(photo), "--samples", "3", "--color", "--out",
                 str(tmp_path / "infer")]) == 0
    with open(tmp_path / "infer" / "index.csv") as fh:
        row = next(csv.DictReader(fh))
    pred, samples = (np.load(tmp_path / "infer" / row[k]) for k in ("pred", "samples"))
    colours = np.load(tmp_path / "infer" / f"{row['id']}.colors.npy")

    shown, mask, net_in, glb, files, slider, status = client.predict(handle_file(photo), api_name="/reconstruct")
    np.testing.assert_array_equal(_glb_points(glb), pred)  # float32, bit for bit
    np.testing.assert_array_equal(_glb_colours(glb), colours)  # the photo's colours, as lmnet infer --color
    assert sorted(Path(f).suffix for f in files) == [".glb", ".obj", ".ply"]
    ply, obj = (next(f for f in files if f.endswith(s)) for s in (".ply", ".obj"))
    np.testing.assert_array_equal(np.asarray(trimesh.load(ply, process=False).vertices, np.float32), pred)
    np.testing.assert_allclose(trimesh.load(obj, process=False).vertices, pred, rtol=0, atol=1e-6)
    # what the page shows: the mask is the photo's alpha, the network input what lmnet infer feeds
    np.testing.assert_array_equal(np.asarray(Image.open(mask)), np.asarray(Image.open(photo))[..., 3])
    expected_input = np.clip(prepare_image(photo).transpose(1, 2, 0), 0, 255).round().astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(net_in).convert("RGB")), expected_input)
    assert np.asarray(Image.open(shown)).shape[:2] == (90, 150)
    assert slider["maximum"] == 3 and slider["visible"] and "chair.png: 2048 points" in status
    # the slider: sample k is lmnet infer --samples 3's samples[k - 1]
    glb2, files2 = client.predict(2, api_name="/show_sample")
    np.testing.assert_array_equal(_glb_points(glb2), samples[1])
    assert Path(glb2).name == "sample02.glb" and len(files2) == 3


@needs_gradio
def test_an_over_limit_upload_gets_a_clear_message(app_server, client, tmp_path, monkeypatch):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    photo = _photo(tmp_path / "big photo.png")
    monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "15000")  # the photo (13,500) pads to 150 x 150 = 22,500
    with pytest.raises(AppError, match=r"big photo\.png: a 150x90 image is padded.* over the limit of 15,000 pixels.*"
                                        r"LMNET_MAX_IMAGE_PIXELS=22500") as err:
        client.predict(handle_file(photo), api_name="/reconstruct")
    assert "/tmp" not in str(err.value) and "Traceback" not in str(err.value)  # the user's name, not the server's
    monkeypatch.delenv("LMNET_MAX_IMAGE_PIXELS")
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    with pytest.raises(AppError, match=r"^notes\.png: unreadable or truncated PNG"):
        client.predict(handle_file(tmp_path / "notes.png"), api_name="/reconstruct")
    # nothing is kept from a refused upload: the slider has no result to show
    with pytest.raises(AppError, match="reconstruct a photo first"):
        client.predict(1, api_name="/show_sample")


@needs_gradio
def test_the_server_serves_no_other_file(app_server):
    url, run, _ = app_server
    for path in (Path(run) / "config.json", Path("/etc/passwd")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=10)
        assert err.value.code in (403, 404)


@needs_gradio
def test_a_busy_port_or_a_bad_examples_folder_is_one_line(app_server, tmp_path, capsys):
    url, run, _ = app_server
    port = url.rstrip("/").rsplit(":", 1)[1]
    assert main(["app", "--run", str(run), "--port", port]) == 2
    assert main(["app", "--run", str(run), "--examples", str(tmp_path / "nope")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lmnet app")]
    assert len(err) == 2 and "lmnet app: error: --host 127.0.0.1 --port " + port + ": cannot listen there" in err[0]
    assert err[1] == f"lmnet app: error: --examples {tmp_path / 'nope'}: not a folder"


def test_upload_bytes_limit_and_run_checks(tmp_path, tiny_project, monkeypatch):
    photo = _photo(tmp_path / "p.png")
    monkeypatch.setenv("LMNET_MAX_UPLOAD_BYTES", "100")
    with pytest.raises(ResourceLimitError, match=r"upload p\.png: \d+ bytes is over the limit of 100 bytes.*"
                                                 r"LMNET_MAX_UPLOAD_BYTES"):
        check_upload(photo, "p.png")
    monkeypatch.delenv("LMNET_MAX_UPLOAD_BYTES")
    check_upload(photo, "p.png")
    l1 = AppRun(tiny_project[1], samples=5)
    assert not l1.probabilistic and l1.samples == 0  # Variant I: no sample slider
    assert l1.reconstruct(photo, "p.png").clouds.shape == (1, 2048, 3)
    with pytest.raises(ConfigError, match="lmnet app needs an image run"):
        AppRun(Path(tiny_project[1]).parent / "ae")
    with pytest.raises(ConfigError, match="--samples must be a whole number"):
        AppRun(tiny_project[2], samples=-1)


def test_an_imported_published_run_predicts_as_lmnet_infer(port_run, tmp_path):
    run, _ = port_run
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., :3] = 90  # stored under the transparent pixels: the published models' convention sees it
    rgba[40:90, 30:100] = (200, 20, 10, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "user.png")
    assert main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "user.png"), "--samples", "2",
                 "--out", str(tmp_path / "pred")]) == 0
    res = AppRun(run, samples=2).reconstruct(tmp_path / "user.png", "user.png")
    np.testing.assert_array_equal(res.network_input, rgba[..., :3])
    np.testing.assert_array_equal(res.mask, rgba[..., 3])
    np.testing.assert_array_equal(res.clouds[0], np.load(tmp_path / "pred" / "000000.pred.npy"))
    np.testing.assert_array_equal(res.clouds[1:], np.load(tmp_path / "pred" / "000000.samples.npy"))


def test_cloud_files_hold_the_points_and_colours():
    pts = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    colours = display_colours(pts)
    assert colours.dtype == np.uint8 and colours.shape == (300, 4) and colours[:, :3].min() >= 40
    for fmt in ("glb", "ply"):
        data = cloud_bytes(pts, colours, fmt)
        loaded = trimesh.load(io.BytesIO(data), file_type=fmt, process=False)
        cloud = next(iter(loaded.geometry.values())) if fmt == "glb" else loaded
        np.testing.assert_array_equal(np.asarray(cloud.vertices, np.float32), pts)
        np.testing.assert_array_equal(np.asarray(cloud.colors), colours)
    with pytest.raises(DataError, match="one of"):
        cloud_bytes(pts, None, "stl")


def test_examples_are_copied_photos_only(tmp_path):
    src = tmp_path / "ex"
    src.mkdir()
    _photo(src / "b.PNG")
    _photo(src / "a.jpg.png")
    (src / "readme.txt").write_text("not a photo")
    copies = copy_examples(src, tmp_path / "copies")
    assert [Path(c).name for c in copies] == ["a.jpg.png", "b.PNG"]
    assert all(Path(c).parent == tmp_path / "copies" for c in copies)
    assert copy_examples(None, tmp_path / "none") == []
    with pytest.raises(ConfigError, match="not a folder"):
        copy_examples(tmp_path / "missing", tmp_path / "c2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no photos"):
        copy_examples(tmp_path / "empty", tmp_path / "c3")


def test_each_photo_gets_a_new_folder_inside_its_sessions(tmp_path):
    state = AppState(run=None, root=tmp_path)
    a, b = state.session_folder("abc123"), state.session_folder("abc123")
    other = state.session_folder("../../etc")  # a session hash is letters and digits: the rest is dropped
    assert a != b and a.parent == b.parent == tmp_path / "sessions" / "abc123" and not any(a.iterdir())
    assert other.parent == tmp_path / "sessions" / "etc"
    state.end_session("abc123")
    assert not (tmp_path / "sessions" / "abc123").exists() and other.is_dir()


def test_app_without_gradio_says_how_to_install(tiny_project, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    assert main(["app", "--run", str(tiny_project[1])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lmnet app: error: the web app needs Gradio: pip install lmnet[app]"]


@needs_gradio
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install -y chromium)")
@pytest.mark.skipif(importlib.util.find_spec("websocket") is None, reason="websocket-client not installed")
@pytest.mark.parametrize("source", ["upload", "example"])
def test_the_3d_view_shows_the_cloud_in_chromium(tiny_project, tmp_path, source):
    """``lmnet app`` in headless Chromium: a photo uploaded through the page's file field, or the
    first ``--examples`` photo clicked, ends in the 3D viewer."""
    (tmp_path / "ex").mkdir()
    shot, photo = tmp_path / "viewer.png", _photo(tmp_path / "ex" / "chair.png")
    pick = ["--examples", str(photo.parent)] if source == "example" else ["--photo", str(photo)]
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "app_check.py"), "--run", str(tiny_project[2]),
                           *pick, "--out", str(shot)], capture_output=True, text=True, timeout=400)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "app stopped; its temporary folders left behind: 0" in proc.stdout  # SIGTERM cleans up as Ctrl-C
    assert "chair.png: 2048 points predicted" in proc.stdout
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert rgb.shape[0] > 300 and rgb.shape[1] > 300  # the viewer's canvas
    # the points are drawn in the photo's two colours (red and blue halves: each point takes its pixel's
    # colour, as lmnet infer --color); the viewer's own label, buttons and background are grey or white
    coloured = np.ptp(rgb, axis=-1) >= 30
    red, blue = (rgb[..., 0] - rgb[..., 2] > 80).sum(), (rgb[..., 2] - rgb[..., 0] > 80).sum()
    assert coloured.mean() > 0.002 and red > 100 and blue > 100, (coloured.mean(), red, blue)
