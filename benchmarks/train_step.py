"""Train-step throughput of the SAL model (one JSON line per case).

    python benchmarks/train_step.py                       # tiny + paper, fp32, CPU-sized
    python benchmarks/train_step.py --presets=paper --batch_size=64 --variants=fp32,mixed,xla,mixed_xla

Runs the trainer's own replica step (model forward, eq. 6 loss with softmax +
quadruplet + SAC, SGD update) on synthetic P×K batches, so only the step is
timed, not the input pipeline. Reports images/s and, with the forward FLOPs of
the model (train ≈ 3 × forward), achieved TFLOP/s and the fraction of the
device peak when `--peak_tflops` is given or the GPU is known.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_list("presets", ["tiny", "paper"], "Model presets to time.")
flags.DEFINE_list("variants", ["fp32", "xla", "mixed"], "fp32 | xla | mixed | mixed_xla.")
flags.DEFINE_integer("batch_size", 0, "Global batch (0: 72 for tiny, 8 for paper).")
flags.DEFINE_integer("steps", 0, "Timed steps (0: 20 for tiny, 3 for paper).")
flags.DEFINE_integer("warmup", 2, "Untimed steps (tracing / autotuning).")
flags.DEFINE_float("peak_tflops", 0.0, "Device peak TFLOP/s for the fraction (0: guess from the GPU name).")
FLAGS = flags.FLAGS

# Dense peak TFLOP/s (fp32 via TF32 tensor cores, fp16 tensor cores) of known GPUs.
KNOWN_PEAKS = {
    "H100": {"fp32": 494.7, "mixed": 989.4},
    "H200": {"fp32": 494.7, "mixed": 989.4},
    "A100": {"fp32": 156.0, "mixed": 312.0},
}


def with_fraction_of_peak(out, device, mixed):
    """`out` with `fraction_of_peak` / `peak_tflops_assumed` when the device's peak is known (or --peak_tflops)."""
    peak = FLAGS.peak_tflops or next(
        (v["mixed" if mixed else "fp32"] for k, v in KNOWN_PEAKS.items() if k in device), 0.0
    )
    if peak:
        out["fraction_of_peak"] = round(out["train_tflops_per_second"] / peak, 4)
        out["peak_tflops_assumed"] = peak
    return out


# The JAX twin of `run_case`, kept beside it line for line so the two timings measure the same step.
def run_case_jax(preset, variant, batch, steps, warmup):
    """Same step on Keras' JAX backend (KERAS_BACKEND=jax): stateless call + jax.jit."""
    import jax
    import keras
    import numpy as np

    from sal_tf.losses import SALObjective
    from sal_tf.models import build_model
    from sal_tf.models.stats import forward_flops

    mixed = variant.startswith("mixed")
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed else "float32")
    model = build_model(preset, num_classes=751, verbose=False)
    objective = SALObjective(softmax=True, metric="quadruplet", sac=True)  # stage 2, eq. 6
    opt = keras.optimizers.SGD(1e-3, momentum=0.9)
    opt.build(model.trainable_variables)

    def loss_fn(tv, ntv, images, labels):
        outputs, ntv = model.stateless_call(tv, ntv, images, training=True)
        return objective(labels, outputs)["loss"], ntv

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(tv, ntv, ov, images, labels):
        (loss, ntv), grads = grad_fn(tv, ntv, images, labels)
        tv, ov = opt.stateless_apply(ov, grads, tv)
        return loss, tv, ntv, ov

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in opt.variables],
    )
    h, w = model.image_size
    rng = np.random.default_rng(0)
    images = jax.numpy.asarray(rng.uniform(0, 255, (batch, h, w, 3)).astype("float32"))
    labels = jax.numpy.asarray(np.repeat(np.arange(batch // 4), 4)[:batch].astype("int32"))
    for _ in range(warmup):
        loss, *state = step(*state, images, labels)
    float(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, *state = step(*state, images, labels)
    float(loss)
    dt = time.perf_counter() - t0
    ips = batch * steps / dt
    dev = jax.devices()[0]
    device = getattr(dev, "device_kind", str(dev))
    out = {
        "benchmark": "train_step",
        "backend": "jax",
        "preset": preset,
        "variant": "mixed_bfloat16" if mixed else "fp32(xla)",
        "batch_size": batch,
        "steps": steps,
        "images_per_second": round(ips, 2),
        "seconds_per_step": round(dt / steps, 4),
        "train_tflops_per_second": round(3 * forward_flops(model) * ips / 1e12, 3),
        "device": device,
        "final_loss": round(float(loss), 4),
    }
    keras.mixed_precision.set_global_policy("float32")
    return with_fraction_of_peak(out, device, mixed)


# Long but linear: build, warm up, time, report; kept whole so the timed region is visible at once.
def run_case(preset, variant, batch, steps, warmup):
    import keras

    if keras.backend.backend() == "jax":
        return run_case_jax(preset, variant, batch, steps, warmup)
    import numpy as np
    import tensorflow as tf

    from sal_tf.losses import SALObjective
    from sal_tf.models import build_model
    from sal_tf.models.stats import forward_flops

    mixed = variant.startswith("mixed")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    model = build_model(preset, num_classes=751, verbose=False)
    objective = SALObjective(softmax=True, metric="quadruplet", sac=True)  # stage 2, eq. 6
    opt = keras.optimizers.SGD(1e-3, momentum=0.9)
    if mixed:
        opt = keras.optimizers.LossScaleOptimizer(opt)

    def step(images, labels):
        with tf.GradientTape() as tape:
            terms = objective(labels, model(images, training=True))
            loss = opt.scale_loss(terms["loss"]) if mixed else terms["loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return terms["loss"]

    step = tf.function(step, jit_compile=variant.endswith("xla"))
    h, w = model.image_size
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (batch, h, w, 3)).astype("float32"))
    labels = tf.constant(np.repeat(np.arange(batch // 4), 4)[:batch].astype("int32"))
    for _ in range(warmup):
        float(step(images, labels))
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step(images, labels)
    float(loss)
    dt = time.perf_counter() - t0
    ips = batch * steps / dt
    flops = forward_flops(model)
    gpus = tf.config.list_physical_devices("GPU")
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    out = {
        "benchmark": "train_step",
        "preset": preset,
        "variant": variant,
        "batch_size": batch,
        "steps": steps,
        "backend": "tensorflow",
        "images_per_second": round(ips, 2),
        "seconds_per_step": round(dt / steps, 4),
        "train_tflops_per_second": round(3 * flops * ips / 1e12, 3),
        "device": device,
    }
    keras.mixed_precision.set_global_policy("float32")
    return with_fraction_of_peak(out, device, mixed)


def main(argv):
    del argv
    for preset in FLAGS.presets:
        for variant in FLAGS.variants:
            batch = FLAGS.batch_size or (72 if preset == "tiny" else 8)
            steps = FLAGS.steps or (20 if preset == "tiny" else 3)
            print(json.dumps(run_case(preset, variant, batch, steps, FLAGS.warmup)), flush=True)


if __name__ == "__main__":
    app.run(main)
