"""A real local GCS server (gcp-storage-emulator) for the gs:// tests.

`gcs_bucket` starts one in-memory server per test session on 127.0.0.1 and a free port,
points every client at it through the environment (inherited by CLI subprocesses), and
yields a fresh `gs://` prefix per test. The server is a separate process, so a SIGKILLed
training run's uploads stay there for the resumed run, as on a real bucket. Tests skip
with the reason when the emulator or gcsfs is not installed or the server does not start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

BUCKET = "jaxbert-test"

# The emulator as a server process, with two gaps filled: real GCS sends an object's
# generation in an `x-goog-generation` header on every download, and tensorstore (orbax's
# OCDBT manifests) refuses a read without it ("Malformed StorageGeneration").
_SERVER = """
import sys
from http import server
from gcp_storage_emulator.handlers import objects

# It serves one request at a time with a listen backlog of 5: a client's concurrent ranged
# reads beyond that are dropped at SYN and retried after 1, 3, 7 … s. Queue them instead.
server.HTTPServer.request_queue_size = 1024

_download = objects.download

def download(request, response, storage, *args, **kwargs):
    _download(request, response, storage, *args, **kwargs)
    try:
        params = request.params
        obj = storage.get_file_obj(params["bucket_name"], params["object_id"])
    except Exception:
        return
    response["x-goog-generation"] = str(obj["generation"])
    response["x-goog-metageneration"] = str(obj.get("metageneration", "1"))

objects.download = download
from gcp_storage_emulator.__main__ import main
sys.exit(main())
"""


def emulator_env(port: int) -> dict[str, str]:
    """What points gcsfs/epath (STORAGE_EMULATOR_HOST) and tensorstore — which orbax
    writes arrays through — (TENSORSTORE_GCS_HTTP_URL) at the server, without credentials."""
    url = f"http://127.0.0.1:{port}"
    return {
        "STORAGE_EMULATOR_HOST": url,
        "TENSORSTORE_GCS_HTTP_URL": url,
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",  # tensorstore: skip the credential search
        # gcsfs's bucket-type probe asks the gRPC control API, which the emulator lacks
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GOOGLE_CLOUD_PROJECT": "jaxbert-test",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/storage/v1/b", timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_emulator(bucket: str = BUCKET, log_path: str | None = None):
    """Yields the port of a started in-memory server holding `bucket`; stops it after.
    Raises RuntimeError with the server's output when it does not come up in 30 s."""
    port = _free_port()
    cmd = [sys.executable, "-c", _SERVER, "start", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--default-bucket", bucket, "--in-memory"]
    cmd += [] if log_path else ["-q"]
    with open(log_path or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gcp-storage-emulator did not start (exit {proc.poll()})")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def gcs_server():
    """The session's server port, with the client environment set; skips if unavailable."""
    for module in ("gcp_storage_emulator", "gcsfs"):  # not imported: gcsfs reads env at import
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (requirements-dev.txt)")
    try:
        stack = contextlib.ExitStack()
        port = stack.enter_context(running_emulator())
    except (RuntimeError, OSError) as e:
        pytest.skip(f"the local GCS server cannot start: {e}")
    saved = {k: os.environ.get(k) for k in emulator_env(port)}
    os.environ.update(emulator_env(port))
    try:
        yield port
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.close()


@pytest.fixture
def gcs_bucket(gcs_server) -> str:
    """A fresh gs:// prefix on the session's server, unique to this test."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex[:12]}"
