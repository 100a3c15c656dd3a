"""Example client of the exported model behind TF Serving (REST and gRPC).

    # embeddings of some images (REST port 8501, gRPC port 8500 by default in TF Serving)
    python -m export.client --server=localhost:8501 --protocol=rest --images=a.jpg,b.jpg
    python -m export.client --server=localhost:8500 --protocol=grpc --images=query/
    # top matches of each query image in a gallery folder
    python -m export.client --server=localhost:8500 --protocol=grpc --images=q.jpg --gallery=gallery/ --top_k=5

Requests go to the `serving_default` signature: `image_bytes` string [B] of
encoded JPEG/PNG files, answered with `embedding` float32 [B, D], L2-normalised
(so a dot product is the cosine similarity).

  * REST: `POST http://<server>/v1/models/<name>[/versions/<v>]:predict` with
    `{"signature_name": ..., "instances": [{"b64": "..."}, ...]}` (row form), or
    `{"signature_name": ..., "inputs": {"image_bytes": [{"b64": "..."}, ...]}}` (columnar form).
  * gRPC: `tensorflow.serving.PredictionService/Predict` with a `PredictRequest`
    whose `inputs["image_bytes"]` is a DT_STRING tensor [B].
"""

import base64
import json
import os
import urllib.error
import urllib.request

import numpy as np

from sal_tf.export import signatures as sig
from sal_tf.utils import IMAGE_EXTENSIONS, is_image_file

REST_FORMS = ("instances", "inputs")


def read_images(paths):
    """Files and folders (sorted image files inside) → list of (path, bytes)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            files = sorted(os.path.join(p, n) for n in os.listdir(p) if is_image_file(n))
            if not files:
                raise ValueError(f"{p!r} holds no {'/'.join(IMAGE_EXTENSIONS)} files.")
        elif os.path.isfile(p):
            files = [p]
        else:
            raise FileNotFoundError(f"No such image file or folder: {p!r}.")
        for f in files:
            with open(f, "rb") as fh:
                out.append((f, fh.read()))
    return out


def _host_port(server):
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--server must be host:port (e.g. localhost:8501). Received: {server!r}")
    return host, int(port)


# === REST ===


def rest_url(server, model_name, version=None):
    """The `:predict` URL of a model (and version) on a TF Serving REST port."""
    host, port = _host_port(server)
    path = f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version is not None else "")
    return f"http://{host}:{port}{path}:predict"


def rest_body(image_bytes, form="instances", signature_name=sig.SIGNATURE_BYTES):
    """JSON body of a REST predict request with base64 images (`form`: instances | inputs)."""
    encoded = [{"b64": base64.b64encode(b).decode("ascii")} for b in image_bytes]
    if form == "instances":
        return {"signature_name": signature_name, "instances": encoded}
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": {sig.INPUT_BYTES: encoded}}
    raise ValueError(f"REST form must be one of {REST_FORMS}. Received: {form!r}")


def parse_rest_response(body):
    """Embeddings float32 [B, D] from a REST predict response (row or columnar form)."""
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        rows = [r[sig.OUTPUT] if isinstance(r, dict) else r for r in rows]
        return np.asarray(rows, np.float32).reshape(len(rows), -1)
    if "outputs" in body:
        out = body["outputs"]
        out = out[sig.OUTPUT] if isinstance(out, dict) else out
        return np.asarray(out, np.float32).reshape(len(out), -1)
    raise RuntimeError(f"Unexpected REST response (no 'predictions' or 'outputs'): {str(body)[:200]}")


def rest_predict(server, model_name, image_bytes, version=None, form="instances", timeout=60):
    """Embeddings [B, D] of encoded images through TF Serving's REST API."""
    data = json.dumps(rest_body(image_bytes, form)).encode("utf8")
    url = rest_url(server, model_name, version)
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise RuntimeError(f"TF Serving REST {e.code} for {e.url}: {detail}") from None
    except urllib.error.URLError as e:
        raise RuntimeError(f"Cannot reach TF Serving's REST API at {url}: {e.reason}") from None
    return parse_rest_response(body)


# === gRPC ===


def grpc_request(model_name, image_bytes, version=None, signature_name=sig.SIGNATURE_BYTES):
    """`PredictRequest` with `inputs["image_bytes"]` = DT_STRING [B]."""
    from sal_tf.export.serving_config import predict_request

    return predict_request(model_name, image_bytes, signature_name, version)


def grpc_predict(server, model_name, image_bytes, version=None, timeout=60):
    """Embeddings [B, D] of encoded images through TF Serving's gRPC API."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    _host_port(server)
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(grpc_request(model_name, image_bytes, version), timeout=timeout)
        except grpc.RpcError as e:
            raise RuntimeError(f"TF Serving gRPC {e.code().name} from {server}: {e.details()}") from None
    if sig.OUTPUT not in response.outputs:
        raise RuntimeError(f"gRPC response has outputs {sorted(response.outputs)}, expected '{sig.OUTPUT}'.")
    return tf.make_ndarray(response.outputs[sig.OUTPUT]).astype(np.float32)


def embed(server, model_name, image_bytes, protocol="grpc", version=None, batch_size=32, rest_form="instances"):
    """Embeddings [N, D] of many images, in requests of `batch_size`."""
    if protocol not in ("rest", "grpc"):
        raise ValueError(f"--protocol must be 'rest' or 'grpc'. Received: {protocol!r}")
    out = []
    for start in range(0, len(image_bytes), batch_size):
        chunk = image_bytes[start : start + batch_size]
        if protocol == "rest":
            out.append(rest_predict(server, model_name, chunk, version, rest_form))
        else:
            out.append(grpc_predict(server, model_name, chunk, version))
    return np.concatenate(out, 0) if out else np.zeros([0, 0], np.float32)


def top_matches(query, gallery, k=5):
    """Indices [Q, k] and cosine similarities [Q, k] of the best gallery rows per query row."""
    scores = np.asarray(query, np.float64) @ np.asarray(gallery, np.float64).T
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, 1)


def main(argv):
    from absl import app, flags

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.images:
        raise app.UsageError("--images is required (comma-separated files or folders).")
    queries = read_images(FLAGS.images)
    kwargs = dict(
        protocol=FLAGS.protocol, version=FLAGS.model_version, batch_size=FLAGS.batch_size, rest_form=FLAGS.rest_form
    )
    q = embed(FLAGS.server, FLAGS.model_name, [b for _, b in queries], **kwargs)
    if not FLAGS.gallery:
        for (path, _), e in zip(queries, q):
            print(json.dumps({"image": path, "embedding": [round(float(v), 6) for v in e]}))
        return
    gallery = read_images([FLAGS.gallery])
    g = embed(FLAGS.server, FLAGS.model_name, [b for _, b in gallery], **kwargs)
    order, scores = top_matches(q, g, FLAGS.top_k)
    for (path, _), idx, sc in zip(queries, order, scores):
        matches = [{"image": gallery[i][0], "cosine": round(float(s), 6)} for i, s in zip(idx, sc)]
        print(json.dumps({"query": path, "matches": matches}))


def define_flags():
    """Defines the client's flags (called by `run`, never at import)."""
    from absl import flags

    flags.DEFINE_string("server", "localhost:8500", "TF Serving host:port (gRPC 8500, REST 8501 by default).")
    flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "API to call.")
    flags.DEFINE_enum("rest_form", "instances", list(REST_FORMS), "REST request body form.")
    flags.DEFINE_string("model_name", "sal", "Model name in models.config.")
    flags.DEFINE_integer("model_version", None, "Model version to call (default: the server's choice).")
    flags.DEFINE_list("images", None, "Query image files or folders.")
    flags.DEFINE_string("gallery", None, "Folder of gallery images: print the top matches of each query.")
    flags.DEFINE_integer("top_k", 5, "Matches printed per query with --gallery.")
    flags.DEFINE_integer("batch_size", 32, "Images per request.")


def run():
    """`python -m export.client` / `python -m sal_tf.export.client`."""
    from absl import app

    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
