"""What a user cares about in an exported form: its mAP / Rank-1, and the real crops int8 is calibrated on.

`AccuracyCheck` scores each exported file on the evaluation set (the query / gallery splits of the
run's dataset, `sal_tf.inference.evaluate.evaluate_dataset`, no re-ranking) through the same back end
that serves it (`sal_tf.inference.forms.open_backend`), beside the Keras model's own score; a form whose
mAP is more than `max_map_drop` points below the Keras model's is refused (not published) unless
`allow_drop`. With `max_images` the forms are scored on one seeded subset of the evaluation set
(`subset`; `python -m export --accuracy_max_images`), the same for every form: for a model too slow
to embed the whole set several times (the paper preset on 2 cores: minutes per form). `calibration_images` gives the representative dataset of full-integer quantisation
(`sal_tf/export/tflite.py`): training crops of the run's data, decoded and resized as training does.
"""

import dataclasses
import json
import os

import numpy as np

DEFAULT_MAX_MAP_DROP = 1.0  # points of mAP an exported form may lose against the Keras model (--max_map_drop)
CALIBRATION_COUNT = 200  # training crops that calibrate int8 activations (--calibration_images)


class AccuracyDropError(ValueError):
    """An exported form lost more mAP than allowed; it was not published (the message names it)."""


def run_data(model_path):
    """(dataset, data_dir) recorded in the training run's `config.json` beside `model_path`, or (None, None)."""
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(os.path.abspath(model_path))
    config = os.path.join(folder, "config.json")
    if not os.path.isfile(config):
        return None, None
    with open(config) as f:
        values = json.load(f)
    return values.get("dataset"), values.get("data_dir") or None


def calibration_images(dataset, image_size, count=CALIBRATION_COUNT, seed=0):
    """float32 [n, H, W, 3] RGB 0..255: `count` training images of `dataset` (a seeded sample, all ids)."""
    from sal_tf.data import pipelines

    records = dataset.train
    if not records:
        raise ValueError(f"{dataset.name} at {dataset.root} has no training images to calibrate int8 on.")
    pick = np.random.default_rng(seed).permutation(len(records))[: int(count)]
    return np.stack([pipelines.load_image(records[i].path, image_size).numpy() for i in sorted(pick)])


def subset(dataset, max_images, seed=0):
    """`dataset` with about `max_images` query + gallery images (all of them when 0 or enough).

    A seeded sample of the queries (their share of the whole), every gallery image of their identities
    (so each stays answerable; more than `max_images` only if these alone exceed it), and a seeded sample
    of the other gallery images (distractors, junk and other identities) filling the rest.
    """
    total = len(dataset.query) + len(dataset.gallery)
    if not max_images or max_images >= total:
        return dataset
    rng = np.random.default_rng(seed)
    count = max(1, round(max_images * len(dataset.query) / total))
    query = [dataset.query[i] for i in sorted(rng.permutation(len(dataset.query))[:count])]
    pids = {r.pid for r in query}
    matches = [i for i, r in enumerate(dataset.gallery) if r.pid in pids]
    others = [i for i, r in enumerate(dataset.gallery) if r.pid not in pids]
    fill = rng.permutation(others)[: max(0, max_images - count - len(matches))]
    gallery = [dataset.gallery[i] for i in sorted([*matches, *fill.tolist()])]
    return dataclasses.replace(dataset, query=query, gallery=gallery)


def score(backend, dataset):
    """{"mAP", "rank1"} in % of a back end (or Keras-form embedder) on `dataset`'s query / gallery."""
    from sal_tf.inference.evaluate import evaluate_dataset

    res, _ = evaluate_dataset(backend, dataset, rerank=False, queries=(), verbose=False)
    return {"mAP": round(100 * float(res["mAP"]), 2), "rank1": round(100 * float(res["rank1"]), 2)}


@dataclasses.dataclass
class AccuracyCheck:
    """Scores exported files against the Keras model's mAP (see the module docstring).

    Attributes:
        dataset: the `ReIDDataset` evaluated (its query / gallery; its train images calibrate int8).
        max_map_drop: points of mAP a form may lose.
        allow_drop: publish a form that loses more (still reported).
        reference: the Keras model's {"mAP", "rank1"} (set by `set_reference`).
        max_images: score on `subset(dataset, max_images)` (0: the whole query / gallery).
    """

    dataset: object
    max_map_drop: float = DEFAULT_MAX_MAP_DROP
    allow_drop: bool = False
    reference: dict = None
    max_images: int = 0

    @property
    def evaluated(self):
        """The query / gallery the forms are scored on (`subset` of `dataset`)."""
        return subset(self.dataset, self.max_images)

    def set_reference(self, keras_model, source="keras"):
        from sal_tf.inference.embedder import KerasEmbedder

        self.reference = score(KerasEmbedder(keras_model, source=source), self.evaluated)
        return self.reference

    def judge(self, path):
        """{"mAP", "rank1", "map_drop", "max_map_drop", "accuracy_passed"} of the model file at `path`."""
        from sal_tf.inference.forms import open_backend

        got = score(open_backend(path, threads=os.cpu_count()), self.evaluated)
        drop = round(self.reference["mAP"] - got["mAP"], 2)
        return {
            **got,
            "map_drop": drop,
            "max_map_drop": self.max_map_drop,
            "accuracy_passed": drop <= self.max_map_drop,
        }

    def refusal(self, entries):
        """The `AccuracyDropError` for the report entries that failed (None when all passed or allowed)."""
        failed = [e for e in entries if e.get("accuracy_passed") is False]
        if not failed or self.allow_drop:
            return None
        return AccuracyDropError(
            "; ".join(
                f"{e['file']}: mAP {e['mAP']:.2f} vs the Keras model's {self.reference['mAP']:.2f} "
                f"(a drop of {e['map_drop']:.2f} points > --max_map_drop={self.max_map_drop})"
                for e in failed
            )
            + ". Not published; --allow_map_drop publishes such a file anyway."
        )
