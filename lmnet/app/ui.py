"""The web app's page (Gradio, the ``app`` extra: ``pip install lmnet[app]``), imported inside the
functions that need it so that ``import lmnet.app`` works without it.

The page: a photo upload (or an example) → the photo, its mask and the network input; the predicted
cloud in a 3D viewer (``Model3D`` showing a .glb); the .ply / .glb / .obj to download; for a Variant
II run a slider over the prediction (0) and its samples (1..K). What the server reads and writes:

- it opens only the bytes Gradio received for an upload (the temporary file Gradio hands over),
  never a path sent by the browser; the examples are copied from ``--examples`` at start;
- its outputs go to a temporary folder per browser session (one sub-folder per photo), removed when
  the session ends or the app stops; Gradio's own copies of uploads and results are deleted after
  :data:`CACHE_SECONDS`; Gradio serves nothing else (``allowed_paths`` empty);
- an upload over ``LMNET_MAX_UPLOAD_BYTES`` (checked by Gradio and again here) or
  ``LMNET_MAX_IMAGE_PIXELS``, or one that is not an image, gets a one-line message in the page.
"""

import shutil
import signal
import tempfile
from pathlib import Path

from lmnet.app.reconstruction import AppRun, Reconstruction, photo_colours, write_cloud_files
from lmnet.envvars import MAX_UPLOAD_BYTES
from lmnet.errors import ConfigError, LmnetError

#: the photo formats an upload or an example may have
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
API_RECONSTRUCT = "reconstruct"  #: the API name of the upload → result event (gradio_client)
API_SAMPLE = "show_sample"  #: the API name of the slider → cloud event
#: Gradio's copies of uploads and results are deleted after this many seconds (and when the app stops)
CACHE_SECONDS = 3600


def gradio_or_hint():
    """The ``gradio`` module, or :class:`~lmnet.errors.ConfigError` saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise ConfigError("the web app needs Gradio: pip install lmnet[app]") from None
    return gradio


def copy_examples(folder: str | Path | None, dest: Path) -> list[str]:
    """The photos directly in ``folder`` (sorted, :data:`PHOTO_SUFFIXES`) copied into ``dest``;
    returns the copies' paths. No folder → ``[]``; a missing or photo-less one → ConfigError."""
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--examples {folder}: not a folder")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise ConfigError(f"--examples {folder}: no photos ({', '.join(PHOTO_SUFFIXES)}) in it")
    dest.mkdir(parents=True, exist_ok=True)
    return [str(shutil.copyfile(p, dest / p.name)) for p in photos]


class AppState:
    """The app's server side: the loaded run and the temporary folder of all sessions' outputs."""

    def __init__(self, run: AppRun, root: Path):
        self.run, self.root = run, root

    def session_folder(self, session: str | None) -> Path:
        """A new, empty folder for one photo's outputs inside the session's folder."""
        folder = self.root / "sessions" / (_session_name(session) or "anonymous")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="photo-", dir=folder))

    def end_session(self, session: str | None) -> None:
        """Remove the session's folders (the page was closed)."""
        if _session_name(session):
            shutil.rmtree(self.root / "sessions" / _session_name(session), ignore_errors=True)


def _session_name(session: str | None) -> str:
    """Gradio's session hash as a folder name: its letters and digits only (at most 64)."""
    return "".join(c for c in (session or "") if c.isalnum())[:64]


def _message(exc: LmnetError, upload: str, name: str) -> str:
    """The one line an error shows, naming the user's file instead of Gradio's temporary copy."""
    return str(exc).replace(upload, name)


def _cloud_outputs(clouds, crop, index: int, folder: Path):
    """The viewer's .glb and the download list for cloud ``index`` of ``clouds`` ``(1 + K, N, 3)``,
    coloured from the photo's network ``crop`` as ``lmnet infer --color`` colours it."""
    index = min(max(int(index), 0), len(clouds) - 1)
    stem = "prediction" if index == 0 else f"sample{index:02d}"
    folder.mkdir(parents=True, exist_ok=True)  # the session may have ended meanwhile
    files = write_cloud_files(clouds[index], folder, stem, photo_colours(clouds[index], crop))
    return str(files["glb"]), [str(p) for p in files.values()]


def _status(run: AppRun, name: str, clouds) -> str:
    kind = f"Variant II, {len(clouds) - 1} samples" if run.probabilistic else "Variant I"
    return f"{name}: {clouds.shape[1]} points predicted by {run.run} ({kind})."


def make_handlers(state: AppState):
    """``(reconstruct, show_sample)``: the page's two event functions (the module docstring)."""
    gr = gradio_or_hint()

    def reconstruct(upload, request: gr.Request):
        if not upload:
            raise gr.Error("choose a photo first")
        name = Path(upload).name
        try:
            res: Reconstruction = state.run.reconstruct(upload, name)
        except LmnetError as exc:
            raise gr.Error(_message(exc, str(upload), name), print_exception=False) from None
        folder = state.session_folder(getattr(request, "session_hash", None))
        glb, files = _cloud_outputs(res.clouds, res.crop, 0, folder)
        slider = gr.Slider(minimum=0, maximum=len(res.clouds) - 1, value=0, step=1,
                           visible=len(res.clouds) > 1, interactive=True)
        return (res.photo, res.mask, res.network_input, glb, files, slider, _status(state.run, name, res.clouds),
                {"clouds": res.clouds, "crop": res.crop, "folder": str(folder)})

    def show_sample(index, result):
        if not result:
            raise gr.Error("reconstruct a photo first")
        return _cloud_outputs(result["clouds"], result["crop"], index, Path(result["folder"]))

    return reconstruct, show_sample


def build_blocks(state: AppState, examples: list[str]):
    """The page (a ``gradio.Blocks``) for ``state``, with ``examples`` (server-side copies) to pick."""
    gr = gradio_or_hint()
    reconstruct, show_sample = make_handlers(state)
    with gr.Blocks(title="lmnet: photo → 3D point cloud", analytics_enabled=False,
                   delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as blocks:
        gr.Markdown(f"## lmnet: one photo → a 3D point cloud\nRun: `{state.run.run}`. Upload a photo of one "
                    "object, centred, on a plain background (an RGBA PNG's alpha is its mask).")
        result = gr.State(None)
        with gr.Row():
            upload = gr.File(label="photo", file_types=list(PHOTO_SUFFIXES), type="filepath")
            viewer = gr.Model3D(label="3D view", display_mode="point_cloud", clear_color=(1, 1, 1, 1), height=420,
                                elem_id="lmnet-model3d")
        status = gr.Markdown("", elem_id="lmnet-status")
        with gr.Row():
            photo = gr.Image(label="photo", interactive=False, type="numpy", format="png")
            mask = gr.Image(label="mask (the photo's alpha, or the object found, as framed)", interactive=False, type="numpy", format="png")
            net_in = gr.Image(label="network input (128 × 128)", interactive=False, type="numpy", format="png")
        sample = gr.Slider(0, 1, value=0, step=1, label="cloud: 0 = prediction, k = Variant II sample k",
                           visible=False)
        downloads = gr.File(label="download (.ply / .glb / .obj)", file_count="multiple", interactive=False)
        outputs = [photo, mask, net_in, viewer, downloads, sample, status, result]
        upload.upload(reconstruct, [upload], outputs, api_name=API_RECONSTRUCT)
        if examples:  # a click loads the example into the upload field and reconstructs it
            gr.Examples(examples=[[p] for p in examples], inputs=[upload], outputs=outputs, fn=reconstruct,
                        run_on_click=True, cache_examples=False, label="examples", api_visibility="private")
        sample.release(show_sample, [sample, result], [viewer, downloads], api_name=API_SAMPLE)

        def end_session(request: gr.Request):
            state.end_session(getattr(request, "session_hash", None))

        blocks.unload(end_session)
    return blocks


def serve(run: str | Path, *, host: str = "127.0.0.1", port: int = 7860, examples: str | Path | None = None,
          samples: int = 8, device: str = "cpu", block: bool = True):
    """Load ``run`` and serve the page on ``host:port`` (``lmnet app``). ``block=False`` returns
    ``(blocks, stop)`` with the server running in a thread; ``stop()`` closes it and removes the
    outputs. ``block=True`` serves until Ctrl-C, then does the same."""
    gradio_or_hint()
    root = Path(tempfile.mkdtemp(prefix="lmnet-app-"))
    try:
        examples = copy_examples(examples, root / "examples")  # a bad folder is refused before the model loads
        blocks = build_blocks(AppState(AppRun(run, samples=samples, device=device), root), examples)
        blocks.queue(default_concurrency_limit=1)  # one model, one photo at a time
        try:
            blocks.launch(server_name=host, server_port=port, prevent_thread_lock=True, share=False,
                          inbrowser=False, allowed_paths=[], max_file_size=MAX_UPLOAD_BYTES.value(),
                          show_error=False, ssr_mode=False, quiet=True)
        except OSError as exc:
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc})") from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

    def stop():
        blocks.close()
        shutil.rmtree(root, ignore_errors=True)

    if not block:
        return blocks, stop
    print(f"lmnet app: serving {run} on {blocks.local_url} (Ctrl-C stops it)", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated app cleans up as on Ctrl-C
    try:
        blocks.block_thread()
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop()
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt
