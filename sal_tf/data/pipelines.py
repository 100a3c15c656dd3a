"""`tf.data` input pipelines: training (shuffled or P×K identity batches) and evaluation.

Images come out as float32 [B, H, W, 3] **RGB in 0..255**; normalisation is the model's first
layer (`CaffePreprocessing`), so no pipeline normalises.

Training (`build_train_dataset`) builds ONE epoch, deterministic for a given (seed, epoch):
the sample order comes from numpy (`random_epoch_indices` / `pk_epoch_indices`, seeded by
`[seed, epoch]`) and every random augmentation draw is a stateless op seeded by
`fold_in([seed, epoch], position in the epoch)`. A resumed run rebuilds epoch `e` and calls
`.skip(step)`. Per image: decode → (camera colour jitter, off by default) → `tf.image.resize`
(bilinear) → zero-pad by `pad` → random crop back → random mirror; implemented as
mirror-the-small-image → resize → slice → pad, which gives the same pixels for a fraction of the
cost. Random erasing (Zhong et al., AAAI 2020; off by default) follows per image. (Per-image ops measured cheaper here than augmenting batched
tensors: TF's broadcasting element-wise kernels cost more on CPU than the slices/pads.)

Sampling (`sal_tf.data.samplers`): `"random"` = shuffled full batches; `"pk"` = P×K batches of P
distinct ids × K images, contiguous per id, whole ids per replica slice, every id visited in every
pass over the ids (the last incomplete group of a pass is topped up with other ids).

Undecodable images are found once, when a dataset is loaded (`sal_tf.data.image_check`), so the
records given here are expected to decode.
"""

import numpy as np
import tensorflow as tf

from sal_tf.data.samplers import SAMPLINGS, pk_epoch_indices, pk_steps_per_epoch, random_epoch_indices

# Random erasing (Zhong et al.): probability, area range, aspect-ratio bound, fill (ImageNet mean pixel).
ERASING_PROBABILITY = 0.5
ERASING_AREA = (0.02, 0.4)
ERASING_MIN_ASPECT = 0.3
ERASING_FILL = (123.675, 116.28, 103.53)
_ERASING_ATTEMPTS = 10
# Camera jitter: the green-magenta tint's range as a share of the warm-cool gain's.
TINT_SHARE = 0.25


def steps_per_epoch(records, batch_size, sampling="random", num_instances=4, num_replicas=1):
    """Number of batches `build_train_dataset` yields per epoch for the same arguments."""
    _check_sampling(sampling)
    if sampling == "random":
        return len(records) // batch_size
    return pk_steps_per_epoch([r.pid for r in records], batch_size, num_instances, num_replicas)


def _check_sampling(sampling):
    if sampling not in SAMPLINGS:
        raise ValueError(f"Unknown sampling {sampling!r}; expected one of {SAMPLINGS}.")


# --- image ops ---


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def load_image(path, image_size):
    """Reads, decodes (JPEG/PNG/…) and resizes (bilinear) one image → float32 [H, W, 3] in 0..255."""
    image = tf.image.resize(_decode(path), image_size)
    image.set_shape([*image_size, 3])
    return image


def resize_shift_flip(image, image_size, shift, flip):
    """`tf.image.resize` → zero-pad → crop shifted by `shift` → optional mirror.

    Output pixel (i, j) shows resized pixel (i + dy, j' + dx), zero outside the image, where
    j' = W - 1 - j when `flip` else j. Cheap order: the small decoded image is mirrored (bilinear
    half-pixel resizing commutes with mirroring), resized, then sliced and zero-padded.

    Args:
        image: [h, w, 3] image (any real dtype).
        image_size: output (H, W).
        shift: int32 [2], the crop offset (dy, dx); |dy| < H and |dx| < W.
        flip: bool scalar tensor.

    Returns:
        float32 [H, W, 3].
    """
    out_h, out_w = image_size
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    resized = tf.image.resize(image, image_size)
    dy = shift[0]
    dx = tf.where(flip, -shift[1], shift[1])  # the mirror came first
    window = tf.slice(resized, [tf.maximum(dy, 0), tf.maximum(dx, 0), 0], [out_h - tf.abs(dy), out_w - tf.abs(dx), 3])
    out = tf.pad(window, [[tf.maximum(-dy, 0), tf.maximum(dy, 0)], [tf.maximum(-dx, 0), tf.maximum(dx, 0)], [0, 0]])
    out.set_shape([out_h, out_w, 3])
    return out


def random_erase(
    image, seed, probability=ERASING_PROBABILITY, area=ERASING_AREA, min_aspect=ERASING_MIN_ASPECT, fill=ERASING_FILL
):
    """Random erasing (Zhong et al.) of one image [H, W, 3]; stateless, seeded by `seed` [2].

    With `probability`, one rectangle of area `area`·H·W (uniform) and aspect ratio uniform in
    [min_aspect, 1/min_aspect] is filled with `fill` (the ImageNet mean pixel: zero after the
    model's caffe preprocessing, as in the reference's erasing of normalised images). As in the
    reference, draws that do not fit are retried: the first fitting one of 10 draws is used.
    """
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    target = tf.random.stateless_uniform([_ERASING_ATTEMPTS], seeds[0], area[0], area[1]) * hf * wf
    aspect = tf.random.stateless_uniform([_ERASING_ATTEMPTS], seeds[1], min_aspect, 1.0 / min_aspect)
    eh = tf.round(tf.sqrt(target * aspect))
    ew = tf.round(tf.sqrt(target / aspect))
    fits = (eh < hf) & (ew < wf)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    eh, ew = tf.cast(eh[first], tf.int32), tf.cast(ew[first], tf.int32)
    active = tf.reduce_any(fits) & (tf.random.stateless_uniform([], seeds[2]) < probability)
    y0 = tf.cast(tf.random.stateless_uniform([], seeds[3]) * tf.cast(h - eh + 1, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.stateless_uniform([], seeds[4]) * tf.cast(w - ew + 1, tf.float32), tf.int32)
    y0, x0 = tf.minimum(y0, h - eh), tf.minimum(x0, w - ew)

    def erase():
        block = tf.broadcast_to(tf.constant(fill, image.dtype), tf.stack([eh, ew, 3]))
        band = image[y0 : y0 + eh]
        band = tf.concat([band[:, :x0], block, band[:, x0 + ew :]], axis=1)
        return tf.concat([image[:y0], band, image[y0 + eh :]], axis=0)

    out = tf.cond(active, erase, lambda: image)
    out.set_shape(image.shape)
    return out


def camera_jitter(image, seed, strength):
    """Another camera's colour and light on one RGB 0..255 image [H, W, 3]; stateless, seeded by `seed` [2].

    With s = `strength` in (0, 1), each draw uniform: white balance — red × (1 + g), blue × (1 − g), g in
    [−s, s], green × (1 + t), t in ±`TINT_SHARE`·s (a warm ↔ cool colour temperature and a
    green–magenta tint) —, brightness × [1 − s, 1 + s], then `tf.image` contrast and saturation
    × [1 − s, 1 + s]. What differs between cameras of one site (BUILD.md "Multi-camera
    tracking", `sal_tf/data/demo_cameras.py`), as colour jitter is used in re-ID training
    (torchreid's and fast-reid's `ColorJitter` augmentation). Clipped to 0..255.
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    gain = tf.random.stateless_uniform([], seeds[0], -strength, strength)
    tint = tf.random.stateless_uniform([], seeds[1], -TINT_SHARE * strength, TINT_SHARE * strength)
    light = tf.random.stateless_uniform([], seeds[2], 1.0 - strength, 1.0 + strength)
    image = image * (tf.stack([1.0 + gain, 1.0 + tint, 1.0 - gain]) * light)
    image = tf.clip_by_value(image, 0.0, 255.0) / 255.0
    image = tf.image.stateless_random_contrast(image, 1.0 - strength, 1.0 + strength, seeds[3])
    image = tf.image.stateless_random_saturation(image, 1.0 - strength, 1.0 + strength, seeds[4])
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


# --- datasets ---


def _validate_image_size(image_size):
    image_size = tuple(int(s) for s in image_size)
    if len(image_size) != 2 or min(image_size) < 2:
        raise ValueError(f"image_size must be (height, width), each >= 2; got {image_size}.")
    return image_size


# Over 60 lines for its argument list and docstring (the sampling choices); the body is short.
def build_train_dataset(
    records,
    image_size=(256, 128),
    batch_size=128,
    sampling="random",
    num_instances=4,
    num_replicas=1,
    seed=0,
    epoch=0,
    flip=True,
    pad_crop=True,
    pad=10,
    random_erasing=False,
    color_jitter=0.0,
):
    """One training epoch as a `tf.data.Dataset` of (images, labels).

    Args:
        records: train `Record`s (pids already relabelled 0..N-1).
        image_size: (H, W) output size.
        batch_size: images per batch (P·K for `"pk"`); the last partial batch is dropped.
        sampling: `"random"` or `"pk"` (see the module docstring).
        num_instances: K for `"pk"`.
        num_replicas: replicas the global batch is split over (P must divide by it for `"pk"`).
        seed, epoch: the epoch's order and augmentation depend only on these.
        flip: random horizontal mirror (p = 0.5).
        pad_crop: zero-pad by `pad` pixels, then crop back to `image_size` at a random offset.
        random_erasing: Zhong et al. random erasing (p = 0.5), off by default.
        color_jitter: `camera_jitter` strength in [0, 1) (0: off, the default), on the decoded image.

    Returns:
        dataset of (float32 [B, H, W, 3] RGB 0..255, int32 [B]) with static shapes;
        `steps_per_epoch(...)` batches.
    """
    _check_sampling(sampling)
    image_size = _validate_image_size(image_size)
    if batch_size < 1 or num_replicas < 1 or batch_size % num_replicas:
        raise ValueError(f"batch_size={batch_size} must be a positive multiple of num_replicas={num_replicas}.")
    if not 0 <= color_jitter < 1:
        raise ValueError(f"color_jitter must be in [0, 1); got {color_jitter}.")
    if not 0 <= pad < min(image_size):
        raise ValueError(f"pad must be in [0, {min(image_size)}) for image_size={image_size}; got {pad}.")
    labels = np.array([r.pid for r in records], np.int32)
    if sampling == "random":
        order = random_epoch_indices(len(records), batch_size, seed, epoch).reshape(-1)
    else:
        order = pk_epoch_indices(labels, batch_size, num_instances, seed, epoch, num_replicas).reshape(-1)
    paths = np.array([r.path for r in records], dtype=object)[order]
    base_seed = tf.constant([seed, epoch], tf.int64)
    pad = pad if pad_crop else 0

    def load(position, element):
        path, label = element
        element_seed = tf.random.experimental.stateless_fold_in(base_seed, position)
        shift_seed, flip_seed, erase_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, 3))
        shift = tf.random.stateless_uniform([2], shift_seed, -pad, pad + 1, dtype=tf.int32)
        mirror = (tf.random.stateless_uniform([], flip_seed) < 0.5) & flip
        image = _decode(path)
        if color_jitter:  # on the photo (not the crop's padding); its own seed: runs without it keep their draws
            jitter_seed = tf.random.experimental.stateless_fold_in(element_seed, 3)
            image = camera_jitter(tf.cast(image, tf.float32), jitter_seed, color_jitter)
        image = resize_shift_flip(image, image_size, shift, mirror)
        if random_erasing:
            image = random_erase(image, erase_seed)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((list(paths), labels[order])).enumerate()
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def build_query_gallery_datasets(dataset, image_size, batch_size=64):
    """(query, gallery) `build_eval_dataset`s of a `ReIDDataset`, in record order."""
    return tuple(build_eval_dataset(records, image_size, batch_size) for records in (dataset.query, dataset.gallery))


def build_eval_dataset(records, image_size=(256, 128), batch_size=64):
    """Images of `records` in order, float32 [b, H, W, 3] RGB 0..255, no augmentation.

    The last partial batch is kept. Files must decode (`sal_tf.data.image_check` finds the bad ones).
    """
    image_size = _validate_image_size(image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    ds = tf.data.Dataset.from_tensor_slices([r.path for r in records])
    ds = ds.map(lambda p: load_image(p, image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
