"""HTTP(S) downloads that resume, and the provenance records that make them verifiable.

Every file this module writes has a *sidecar* ``<file>.lmnet.json`` saying where it came from:

- beside a partial ``<dest>.part``: ``{"url", "expected_size", "expected_sha256"}`` — the request it
  belongs to. A ``.part`` whose sidecar is missing or names another request (another URL without
  the same expected sha256, or another expected size / sha256) is discarded, never resumed: its
  bytes may belong to another file;
- beside a finished file: the same plus its measured ``"size"`` and ``"sha256"``.
  :func:`verify_file` checks a finished file against them (and against what the caller expects)
  before anyone uses it.

Completeness: a transfer is complete only when its length is known and reached — from
``Content-Length`` / ``Content-Range``, or from the expected ``size``. When the server sends
neither, the end of the stream may be a cut connection, so the server is asked once more for the
bytes after the end (``Range``): ``416`` with the same total confirms it, ``206`` continues it; a
server that answers neither way can only be trusted with an expected ``sha256``, else the download
is refused (pass ``--size`` or ``--sha256``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from lmnet import atomic_io
from lmnet.errors import DownloadError

USER_AGENT = "lmnet-downloader/1"
SIDECAR_SUFFIX = ".lmnet.json"
FORCE_HINT = "run the same command again to resume, or add --force to download from scratch"


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: str | Path) -> dict | None:
    """The provenance record of ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_with_sidecar(path: str | Path) -> None:
    for p in (Path(path), sidecar_path(path)):
        if p.exists():
            p.unlink()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _norm(sha256: str | None) -> str | None:
    return sha256.lower() if sha256 else None


def record_file(path: str | Path, source: str, size: int | None = None, sha256: str | None = None) -> dict:
    """Measure a finished file and write its sidecar (``source`` = URL or ``gdrive:<id>``)."""
    path = Path(path)
    rec = {"url": source, "expected_size": size, "expected_sha256": _norm(sha256),
           "size": path.stat().st_size, "sha256": sha256_file(path)}
    atomic_io.write_json(sidecar_path(path), rec)
    return rec


def verify_file(path: str | Path, sources: Iterable[str], size: int | None = None,
                sha256: str | None = None) -> str | None:
    """Why the finished file ``path`` cannot be used for this request, or None when it can.

    It must have a sidecar naming one of ``sources``, its size and sha256 must be the recorded ones
    (not truncated or rewritten since) and the expected ``size`` / ``sha256`` when given.
    """
    path = Path(path)
    rec = read_sidecar(path)
    if rec is None:
        return "no record of where it came from"
    sources = list(sources)
    if rec.get("url") not in sources:
        return f"it came from {rec.get('url')!r}, not from {', '.join(sources)}"
    got = path.stat().st_size
    if got != rec.get("size") or (size is not None and got != size):
        return f"it has {got} bytes, expected {size if size is not None else rec.get('size')}"
    digest = sha256_file(path)
    if digest != rec.get("sha256") or (sha256 is not None and digest != _norm(sha256)):
        return f"its sha256 {digest} is not the expected {_norm(sha256) or rec.get('sha256')}"
    return None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``"bytes 100-199/1000"`` → (100, 1000); ``"bytes */1000"`` → (None, 1000)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _prepare_part(part: Path, want: dict) -> None:
    """Keep ``part`` only if it belongs to the request ``want``; then record that it does."""
    if part.exists():
        old = read_sidecar(part)
        same = old is not None and all(old.get(k) == want[k] for k in ("expected_size", "expected_sha256"))
        if same and old.get("url") != want["url"] and want["expected_sha256"] is None:
            same = False  # another URL, and no hash that would catch a different file
        if not same:
            remove_with_sidecar(part)
    atomic_io.write_json(sidecar_path(part), want)


class _Request(NamedTuple):
    """One download: ``url`` to ``dest`` through ``part``, with the expected ``size`` and ``sha256``
    (None: not known)."""

    url: str
    dest: Path
    part: Path
    size: int | None
    sha256: str | None

    def record(self) -> dict:
        """The ``.part`` file's sidecar: the request its bytes belong to."""
        return {"url": self.url, "expected_size": self.size, "expected_sha256": _norm(self.sha256)}


def _open_from(url: str, have: int, timeout: float):
    """GET ``url``, asking for the bytes from ``have`` on (``Range``) when some are already kept."""
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _body_placement(resp, url: str, have: int) -> tuple[int, str, int | None]:
    """Where the body of ``resp`` goes: ``(bytes kept before it, file mode, total file length or
    None)``. A 206 continues the ``.part`` at byte ``have`` (``"ab"``); a 200 restarts it
    (``"wb"``), its length from ``Content-Length``."""
    if have and resp.status == 206:
        start, total = _content_range(resp.headers.get("Content-Range"))
        if start != have:
            raise DownloadError(f"{url}: asked to resume at byte {have}, server sent "
                                f"Content-Range {resp.headers.get('Content-Range')!r}")
        return have, "ab", total
    if resp.status == 200:
        length = resp.headers.get("Content-Length")
        return 0, "wb", int(length) if length and length.isdigit() else None
    raise DownloadError(f"{url}: unexpected HTTP status {resp.status}")


def _write_body(resp, req: _Request, mode: str, have: int, total: int | None, chunk_size: int,
                progress: bool) -> None:
    """Copy the body of ``resp`` into ``req.part`` (opened with ``mode``) in ``chunk_size`` blocks,
    with a progress bar from ``have`` to ``total`` bytes."""
    from tqdm import tqdm

    with open(req.part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=req.dest.name, disable=not progress,
                                          leave=False) as bar:
        while True:
            block = resp.read(chunk_size)
            if not block:
                break
            fh.write(block)
            bar.update(len(block))


def _receive(resp, req: _Request, have: int, probing: bool, chunk_size: int, progress: bool) -> bool:
    """Store one response's body in ``req.part`` (``have`` bytes kept before the request).

    Returns:
        True when the ``.part`` is complete (or, when nothing can confirm its end, left to the
        expected sha256); False when the stream ended at an unknown length (probe the bytes after it).
    Raises:
        ``http.client.IncompleteRead`` for a short transfer (retried); :class:`DownloadError` for a
        response that cannot be used.
    """
    if probing and resp.status == 200:  # no length before, and the server ignores Range: nothing confirms the end
        if req.sha256 is not None:
            return True  # the expected sha256 decides
        raise DownloadError(
            f"{req.url}: the server sent no Content-Length and ignores Range requests, so a cut "
            f"connection cannot be told from the end of the file ({have} bytes received); "
            f"pass the expected --size or --sha256")
    have, mode, total = _body_placement(resp, req.url, have)
    if req.size is not None and total is not None and total != req.size:
        raise DownloadError(f"{req.url}: server reports {total} bytes, expected {req.size}")
    _write_body(resp, req, mode, have, total, chunk_size, progress)
    got = req.part.stat().st_size
    expected_total = total if total is not None else req.size
    if expected_total is not None and got < expected_total:
        raise http.client.IncompleteRead(b"", expected_total - got)
    return expected_total is not None


def _complete_at_416(exc: urllib.error.HTTPError, req: _Request, have: int) -> bool:
    """Read an HTTP error answer to a request for ``req`` with ``have`` bytes kept. True: a 416
    whose total is ``have``, so the ``.part`` was already complete. A 416 for a ``.part`` longer
    than the file starts it over; a client error (4xx but 408, 429) raises :class:`DownloadError`;
    False: retry."""
    if exc.code == 416 and have:
        _, total = _content_range(exc.headers.get("Content-Range"))
        if total == have and (req.size is None or req.size == have):
            return True
        remove_with_sidecar(req.part)  # the .part is longer than the file: start over
        _prepare_part(req.part, req.record())
    elif exc.code < 500 and exc.code not in (408, 429):
        raise DownloadError(f"{req.url}: HTTP {exc.code} {exc.reason}") from None
    return False


def _fetch_part(req: _Request, *, max_attempts: int, timeout: float, progress: bool, chunk_size: int,
                retry_wait: float) -> None:
    """Bring ``req.part`` to the end of the file, resuming after each dropped connection, until
    ``max_attempts`` attempts have failed (a probe of the bytes after an unknown-length end is
    not a failure); then raise :class:`DownloadError`."""
    last_error: Exception | None = None
    probing = False
    failures = 0
    while failures < max_attempts:
        have = req.part.stat().st_size if req.part.exists() else 0
        try:
            with _open_from(req.url, have, timeout) as resp:
                complete = _receive(resp, req, have, probing, chunk_size, progress)
            if complete:
                return
            probing = True  # the end of an unknown length: ask for the bytes after it
            continue
        except urllib.error.HTTPError as exc:
            if _complete_at_416(exc, req, have):
                return
            last_error = exc
        except DownloadError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = exc
        probing = False
        failures += 1
        if failures < max_attempts:
            time.sleep(min(retry_wait * failures, 10.0))
    raise DownloadError(f"{req.url}: gave up after {max_attempts} attempts ({last_error!r}); "
                        f"{req.part.stat().st_size if req.part.exists() else 0} bytes kept in {req.part}; "
                        f"{FORCE_HINT}") from None


def _install_part(req: _Request) -> None:
    """Check the finished ``.part`` against the expected size / sha256 (deleting it when it does
    not match), record its provenance and move it, with its sidecar, to ``req.dest``."""
    part, url, size, sha256 = req.part, req.url, req.size, req.sha256
    got = part.stat().st_size
    if size is not None and got != size:
        remove_with_sidecar(part)
        raise DownloadError(f"{url}: downloaded {got} bytes, expected {size}; deleted {part}")
    rec = record_file(part, url, size, sha256)
    if sha256 is not None and rec["sha256"] != _norm(sha256):
        remove_with_sidecar(part)
        raise DownloadError(f"{url}: sha256 {rec['sha256']} does not match the expected {sha256}; "
                            f"deleted {part}")
    os.replace(part, req.dest)
    os.replace(sidecar_path(part), sidecar_path(req.dest))


def http_download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
                  max_attempts: int = 5, timeout: float = 60.0, progress: bool = True,
                  chunk_size: int = 1 << 20, retry_wait: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest + ".part"``, resuming with ``Range`` requests.

    A dropped connection is retried up to ``max_attempts`` times in this call, each time resuming
    from the bytes already in the ``.part`` file (which also survives across calls when its sidecar
    names this request). A server that ignores ``Range`` (200 instead of 206) restarts the file.
    Completeness and ``size`` / ``sha256`` are checked (module docstring); a mismatching file is
    deleted. On success ``dest`` gets a sidecar with its measured size and sha256.
    Raises :class:`DownloadError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    req = _Request(url, dest, dest.with_name(dest.name + ".part"), size, sha256)
    _prepare_part(req.part, req.record())
    _fetch_part(req, max_attempts=max_attempts, timeout=timeout, progress=progress, chunk_size=chunk_size,
                retry_wait=retry_wait)
    _install_part(req)
    return dest


def download_first(urls: Sequence[str], dest: str | Path, **kw) -> Path:
    """Try each URL in turn with :func:`http_download`; raise listing every failure."""
    if not urls:
        raise DownloadError("no download URL given")
    errors = []
    for url in urls:
        try:
            return http_download(url, dest, **kw)
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError("every URL failed:\n  " + "\n  ".join(errors))
