"""TF Serving side files: `models.config` and the warm-up requests of a version.

* `<export_dir>/models.config`: a `ModelServerConfig` text proto
  (`model_config_list { config { name: ... base_path: ... model_platform: "tensorflow" } }`)
  for `tensorflow_model_server --model_config_file=...`. Updating it keeps the
  other models listed and the model's own version policy / labels.
* `<version>/assets.extra/tf_serving_warmup_requests`: `PredictionLog` records
  TF Serving replays when it loads the version, so the first client request
  does not pay the graph initialisation (helps a version swap without latency spikes).
"""

import os

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from sal_tf.export import signatures as sig
from sal_tf.utils import write_atomically

CONFIG_FILE = "models.config"
WARMUP_FILE = "tf_serving_warmup_requests"


def read_models_config(path):
    """Parses a `models.config` file; a missing file gives an empty config."""
    config = model_server_config_pb2.ModelServerConfig()
    if not os.path.exists(path):
        return config
    with open(path) as f:
        text = f.read()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(
            f"{path}: not a TF Serving ModelServerConfig text proto ({e}). Expected "
            '\'model_config_list { config { name: "..." base_path: "..." model_platform: "tensorflow" } }\'; '
            "fix or remove the file."
        ) from e
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError(f"{path}: holds a custom_model_config; expected a model_config_list.")
    return config


def update_models_config(path, name, base_path):
    """Adds or updates the entry `name` → `base_path` in `path`; returns the config written."""
    config = read_models_config(path)
    entries = config.model_config_list.config
    entry = next((c for c in entries if c.name == name), None)
    if entry is None:
        entry = entries.add()
        entry.name = name
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    write_atomically(path, text_format.MessageToString(config))
    return config


def string_tensor_proto(values):
    """TensorProto DT_STRING [len(values)] of the given bytes."""
    return tf.make_tensor_proto([bytes(v) for v in values], dtype=tf.string, shape=[len(values)])


def predict_request(model_name, image_bytes, signature_name=sig.SIGNATURE_BYTES, version=None):
    """`PredictRequest` of encoded images for the bytes signature."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[sig.INPUT_BYTES].CopyFrom(string_tensor_proto(image_bytes))
    return request


def write_warmup_requests(version_dir, model_name, image_bytes):
    """Writes `assets.extra/tf_serving_warmup_requests` (one request with `image_bytes`)."""
    extra = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    path = os.path.join(extra, WARMUP_FILE)
    request = predict_request(model_name, image_bytes)
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())
    return path
