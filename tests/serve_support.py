"""Helpers of the sal-serve tests: the server as a subprocess, HTTP calls, and a TF Serving stand-in.

`ServerProcess` is `benchmarks.service_process.ServiceProcess` (`python -m sal_tf.cli.serve --port=0 ...` on
127.0.0.1 as a user would start it, stopped with SIGTERM, or SIGKILL for the durability test) run
from this checkout. `TFServingStandIn` is a stand-in for a remote TF Serving: an HTTP
server in a thread that loads an exported SavedModel with `tf.saved_model.load` and answers
`POST /v1/models/<name>[/versions/<n>]:predict` in TF Serving's REST row format.
"""

import base64
import http.server
import json
import re
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request

from benchmarks.service_process import ServiceProcess
from tests.conftest import REPO


def small_embedding_model(image_size=(64, 32), dim=64, seed=0):
    """A small images → embedding Keras model (random weights): cheap to load, export and serve in tests.

    The service takes any model `sal_tf.load_embedder` loads; where attention maps or the SAL
    architecture do not matter, this one keeps a test's CPU time down.
    """
    import keras

    keras.utils.set_random_seed(seed)
    images = keras.Input((*image_size, 3), name="images")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(images)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(dim, name="embedding")(x))


class Reply:
    """An HTTP answer: status, headers (lower-case names), body bytes; `.json()`."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, {k.lower(): v for k, v in headers.items()}, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} {self.body[:200]!r}>"


def call(method, url, body=None, headers=None, timeout=60):
    """One HTTP request (JSON when `body` is a dict or list, raw bytes otherwise) → `Reply` (any status)."""
    headers = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


def b64(data):
    return base64.b64encode(data).decode("ascii")


def multipart(fields, files):
    """(body, content type) of a multipart form: `fields` {name: text}, `files` [(name, filename, bytes)]."""
    boundary = "sal-test-boundary-7c1e"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class ServerProcess(ServiceProcess):
    """`ServiceProcess` run from this checkout (PYTHONPATH, quiet TensorFlow), with `stop_cleanly`."""

    def __init__(self, args, log_path, env=None):
        env = {"PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        super().__init__(args, log_path, env=env, start_timeout=300, cwd=REPO)

    def stop_cleanly(self):
        """Stops the server and checks it went quietly: SIGTERM's own status, no traceback of ours in its log."""
        status = self.stop()
        with open(self.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        # uvicorn drains the requests, runs the shutdown (the store closes), then re-raises SIGTERM.
        assert status in (0, -signal.SIGTERM), f"exit status {status}:\n{log[-3000:]}"
        ours = [t for t in log.split("Traceback")[1:] if "/sal_tf/" in t]  # (Milvus Lite logs its own)
        assert not ours, log[-3000:]


class _PredictHandler(http.server.BaseHTTPRequestHandler):
    PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(/versions/(?P<version>\d+))?:predict$")

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        import tensorflow as tf

        match = self.PATH.match(self.path)
        if match is None or match.group("name") != self.server.model_name:
            return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        images = [base64.b64decode(row["b64"]) for row in request["instances"]]
        signature = self.server.loaded.signatures[request.get("signature_name", "serving_default")]
        try:
            out = signature(image_bytes=tf.constant(images, tf.string))["embedding"].numpy()
        except tf.errors.InvalidArgumentError as e:
            return self._answer(400, {"error": e.message})
        self.server.requests += 1
        self._answer(200, {"predictions": out.tolist()})


class TFServingStandIn:
    """TF Serving's REST `:predict` for one exported SavedModel, on 127.0.0.1 in a thread."""

    def __init__(self, saved_model_dir, model_name="sal"):
        import tensorflow as tf

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PredictHandler)
        self.server.loaded = tf.saved_model.load(str(saved_model_dir))
        self.server.model_name = model_name
        self.server.requests = 0
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/models/{model_name}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self):
        return self.server.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()
