"""Where the service's embeddings come from: the model in-process, or TF Serving's REST API.

* `LocalEmbedding`: any model form `sal_tf.load_embedder` takes; uploaded images are decoded and
  resized as the exported serving signature does (`sal_tf/serve/images.py`), then the images of
  a request, and of the requests that arrive while a model call runs, go through the model in
  one call (`Coalescer`, up to `MODEL_BATCH` images). One model call at a time: requests queue
  instead of multiplying the memory of concurrent batches, and the CPU cores go to one batch.
* `TFServingEmbedding`: the exported SavedModel behind TF Serving (`--tf_serving=http://host:8501/v1/models/sal`),
  through `sal_tf.export.client.rest_predict` (`{"instances": [{"b64": ...}]}` → `{"predictions": [...]}`).
  Images are decoded here only to refuse bad ones by name; attention maps need the model in-process.
"""

import os
import re
import threading
import urllib.parse

import numpy as np

from sal_tf.serve import images
from sal_tf.serve.batching import Coalescer
from sal_tf.serve.failures import NotSupported, UpstreamError

TF_SERVING_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(/versions/(?P<version>\d+))?/?$")
TF_SERVING_EXPECTED = "a TF Serving REST model URL such as http://host:8501/v1/models/sal[/versions/N]"
MODEL_BATCH = 128  # images of concurrent requests joined into one model call (sal_tf/serve/batching.py)


class LocalEmbedding:
    """Embeddings and attention maps from an in-process `Embedder`."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.dim = embedder.embedding_dim
        self.has_attention = embedder.has_attention
        self.name = f"{embedder.kind}:{os.path.basename(os.path.normpath(embedder.source or 'model'))}"
        self._attention_lock = threading.Lock()
        self._calls = Coalescer(self._embed_batches, MODEL_BATCH, weight=len)
        self.embed([images.picture(blank_png(), "warm-up", 128)])  # traces decoding and the model now

    def embed(self, pictures):
        """`images.Picture`s → float32 [B, D] unit rows (BadInput naming the field of one that does not decode)."""
        return self._calls.submit(None, images.decode_batch(pictures, self.embedder.image_size))

    def _embed_batches(self, _, batches):
        """One model call for the decoded images of concurrent requests; their embeddings, split back."""
        x = np.concatenate(batches)
        out = self.embedder(x, batch_size=max(len(x), 1))
        return np.split(out, np.cumsum([len(b) for b in batches])[:-1])

    def attention_png(self, picture):
        """PNG bytes of an `images.Picture`'s attention maps (paper Fig. 3, `visualize.attention_figure`)."""
        if not self.has_attention:
            raise NotSupported(
                f"the model {self.name} has no attention maps (a SavedModel keeps only the embedding, and "
                "only a SAL model has them); start the service with a SAL .keras file or training folder."
            )
        from sal_tf.evaluation import visualize

        batch = images.decode_batch([picture], self.embedder.image_size)
        with self._attention_lock:
            maps = self.embedder.attention(batch)
        stages = [s.replace("stage", "stage ") for s in self.embedder.attention_stages]
        picture = visualize.attention_figure(batch, maps, self.embedder.attention_grid, stage_names=stages)
        return encode_png(picture)


def encode_png(image):
    """uint8 RGB [H, W, 3] → PNG bytes."""
    import tensorflow as tf

    return tf.io.encode_png(image).numpy()


def blank_png(size=(16, 8)):
    """A small black PNG: the start-up probe (TF Serving: the embedding width) and warm-up."""
    return encode_png(np.zeros((*size, 3), np.uint8))


def parse_tf_serving_url(url):
    """(host:port, model name, version or None) of a TF Serving REST model URL; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    match = TF_SERVING_PATH.match(parts.path)
    if parts.scheme != "http" or not parts.hostname or match is None:
        raise ValueError(f"--tf_serving must be {TF_SERVING_EXPECTED}. Received: {url!r}")
    port = parts.port or 8501
    version = match.group("version")
    return f"{parts.hostname}:{port}", match.group("name"), int(version) if version else None


class TFServingEmbedding:
    """Embeddings from a TF Serving REST endpoint serving the exported SavedModel."""

    has_attention = False

    def __init__(self, url, timeout=30.0):
        self.server, self.model_name, self.version = parse_tf_serving_url(url)
        self.timeout = timeout
        self.name = f"tf_serving:{self.model_name}" + (f"/{self.version}" if self.version else "")
        try:
            self.dim = int(self._predict([blank_png()]).shape[1])  # also checks the server answers
        except UpstreamError as e:
            raise ValueError(f"--tf_serving: {e.message}") from None

    def _predict(self, encoded):
        from sal_tf.export import client

        try:
            return client.rest_predict(self.server, self.model_name, encoded, self.version, timeout=self.timeout)
        except RuntimeError as e:
            raise UpstreamError(str(e)) from None

    def embed(self, pictures):
        images.check_decodes(pictures)
        return self._predict([p.decodable for p in pictures])  # unit rows already (the export normalises)

    def attention_png(self, picture):
        raise NotSupported(
            f"the model is served by TF Serving ({self.name}), which returns only the embedding; "
            "attention maps need --model=<.keras file or training folder>."
        )


def open_embedding(settings):
    """The embedding source `settings` names (`model` or `tf_serving`)."""
    if settings.tf_serving:
        return TFServingEmbedding(settings.tf_serving, settings.tf_serving_timeout_s)
    from sal_tf.inference.loading import load_embedder

    return LocalEmbedding(load_embedder(settings.model, settings.threads, precision=settings.precision))
