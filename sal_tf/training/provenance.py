"""What produced a number: stored beside every evaluation result in `results.json`.

`provenance(config)` → {recipe, seed, deterministic, precision, versions, machine}: the package,
TensorFlow, Keras, numpy and Python versions, and the machine (CPU model from /proc/cpuinfo's
"model name", logical CPUs, GPU names from `tf.config`, the platform). The configuration itself is
`results.json`'s `config` (and `config.json`).
"""

import functools
import os
import platform

from sal_tf.utils.version import __version__


def cpu_model():
    """The CPU's model name (/proc/cpuinfo "model name"; `platform.processor()` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpu_names():
    """Names of the visible GPUs (`tf.config.experimental.get_device_details`), [] on a CPU-only machine."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


@functools.lru_cache(maxsize=1)
def machine():
    """The machine a run trains on (computed once per process)."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpu_names(),
        "platform": platform.platform(),
    }


@functools.lru_cache(maxsize=1)
def versions():
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "sal_tf": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def provenance(config):
    """{recipe, seed, deterministic, precision, versions, machine} of a run's `TrainConfig`."""
    return {
        "recipe": config.recipe,
        "seed": config.seed,
        "deterministic": bool(config.deterministic),
        "precision": "mixed_float16" if config.mixed_precision else "float32",
        "versions": dict(versions()),
        "machine": dict(machine(), gpus=list(machine()["gpus"])),
    }
