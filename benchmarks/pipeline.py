"""Input-pipeline throughput (BUILD.md "Benchmarks"): one JSON line per case, images/s.

Cases, all on the same JPEGs (the demo dataset, 128×64, generated into a temp dir unless
`--data_dir` names a Market-layout folder) and the same run:

* `decode_only`: read + `tf.io.decode_image`, (ragged-)batched uint8 images (no resize).
* `eval`: `build_eval_dataset` at 256×128 (decode + bilinear resize).
* `train_random`: `build_train_dataset` at 256×128, shuffled batches, flip + pad-crop.
* `train_random_erasing`: the same plus random erasing.
* `train_pk`: P×K batches (18 × 4) with flip + pad-crop.

The train cases also report `vs_decode_only` (their rate / the decode-only rate).

    python -m benchmarks.pipeline [--data_dir DIR] [--passes 2]
"""

import json
import os
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("data_dir", None, "Market-layout folder; default: generate the demo dataset in a temp dir.")
flags.DEFINE_integer("passes", 2, "Timed passes over the images per case (after one warm-up batch).")
flags.DEFINE_integer("batch_size", 128, "Batch size of the random/eval cases.")
FLAGS = flags.FLAGS


def _rate(make_dataset, passes):
    """Images/s over `passes` fresh datasets, not counting the first batch (warm-up)."""
    images, seconds = 0, 0.0
    for p in range(passes):
        it = iter(make_dataset(p))
        next(it)
        start = time.perf_counter()
        for batch in it:
            first = batch[0] if isinstance(batch, tuple) else batch
            images += int(first.shape[0]) if first.shape[0] is not None else int(first.nrows())
        seconds += time.perf_counter() - start
    return images / seconds, images


def main(argv):
    del argv
    import tensorflow as tf

    from sal_tf.data import demo, pipelines
    from sal_tf.data.market1501 import load_market1501

    with tempfile.TemporaryDirectory() as tmp:
        root = FLAGS.data_dir or demo.generate_demo_dataset(os.path.join(tmp, "demo"))
        data = load_market1501(root, verbose=False)
        records = data.train + data.query + data.gallery
        train = data.train
        size, batch = (256, 128), FLAGS.batch_size
        common = dict(num_images=len(records), cpus=os.cpu_count(), image_size=list(size))

        def decode(path):
            return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

        def decode_only(_):  # ragged batches: images of any size
            ds = tf.data.Dataset.from_tensor_slices([r.path for r in records])
            ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
            return ds.ragged_batch(batch).prefetch(tf.data.AUTOTUNE)

        cases = [
            ("decode_only", decode_only),
            ("eval", lambda p: pipelines.build_eval_dataset(records, size, batch)),
            ("train_random", lambda p: pipelines.build_train_dataset(records, size, batch, "random", epoch=p)),
            (
                "train_random_erasing",
                lambda p: pipelines.build_train_dataset(records, size, batch, "random", epoch=p, random_erasing=True),
            ),
            ("train_pk", lambda p: pipelines.build_train_dataset(train, size, 72, "pk", num_instances=4, epoch=p)),
        ]
        base = None
        for name, make in cases:
            rate, n = _rate(make, FLAGS.passes)
            base = rate if name == "decode_only" else base
            line = dict(benchmark="pipeline", case=name, images_per_s=round(rate, 1), timed_images=n, **common)
            if name.startswith("train"):
                line["vs_decode_only"] = round(rate / base, 3)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    app.run(main)
