"""Sample order of one training epoch (pure numpy, no TensorFlow): shuffled and P×K batches.

Both are deterministic functions of (records, seed, epoch); the epoch's generator is
`np.random.default_rng([seed, epoch])`.

* `random_epoch_indices`: a permutation cut into `num_records // batch_size` full batches.
* `pk_epoch_indices`: `batch_size = P·K`; each batch holds P distinct ids × K images,
  contiguous per id (id-major), so with R replicas each slice of B/R rows holds P/R whole ids
  (P % R != 0 is an error). An epoch is `rounds = max(1, round(num_images / (num_ids·K)))`
  passes over the ids (≈ one look at every image); each pass shuffles the ids, groups them by
  P and **tops up** the last incomplete group with distinct ids drawn from the rest of that pass,
  so every id is visited in every pass. An id's K images are drawn without replacement, cycling
  through all of its images; ids with fewer than K images use each image once and fill the rest
  with replacement (torchreid's `RandomIdentitySampler` rule).
"""

import numpy as np

SAMPLINGS = ("random", "pk")  # shuffled full batches | P×K identity batches


def _epoch_rng(seed, epoch):
    if int(seed) < 0 or int(epoch) < 0:
        raise ValueError(f"seed and epoch must be >= 0; got seed={seed}, epoch={epoch}.")
    return np.random.default_rng([int(seed), int(epoch)])


def random_epoch_indices(num_records, batch_size, seed=0, epoch=0):
    """Record indices of one shuffled epoch, [num_records // batch_size, batch_size] int64."""
    steps = num_records // batch_size
    if steps < 1:
        raise ValueError(f"Random sampling needs at least batch_size={batch_size} records; got {num_records}.")
    order = _epoch_rng(seed, epoch).permutation(num_records)
    return order[: steps * batch_size].reshape(steps, batch_size)


def _pk_layout(labels, batch_size, num_instances, num_replicas):
    """Validates a P×K request; returns (P, unique ids, members per id, rounds)."""
    if num_instances < 1 or batch_size % num_instances:
        raise ValueError(
            f"P×K sampling: batch_size={batch_size} must be a multiple of num_instances={num_instances} (K >= 1)."
        )
    p = batch_size // num_instances
    if num_replicas < 1 or p % num_replicas:
        raise ValueError(
            f"P×K sampling: P={p} identities per batch (batch_size={batch_size} / "
            f"num_instances={num_instances}) must be divisible by num_replicas={num_replicas} "
            f"so that every replica holds whole identities."
        )
    labels = np.asarray(labels)
    ids, inverse = np.unique(labels, return_inverse=True)
    if len(ids) < p:
        raise ValueError(
            f"P×K sampling needs at least P={p} identities per batch; the records hold "
            f"only {len(ids)} (lower batch_size={batch_size} or num_instances={num_instances})."
        )
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    rounds = max(1, int(np.floor(len(labels) / (len(ids) * num_instances) + 0.5)))
    return p, ids, members, rounds


def pk_steps_per_epoch(labels, batch_size, num_instances=4, num_replicas=1):
    """Number of P×K batches in one epoch (see the module docstring)."""
    p, ids, _, rounds = _pk_layout(labels, batch_size, num_instances, num_replicas)
    return rounds * -(-len(ids) // p)


def pk_epoch_indices(labels, batch_size, num_instances=4, seed=0, epoch=0, num_replicas=1):
    """Record indices of one P×K epoch, [steps, batch_size] int64.

    Args:
        labels: the person id of each record (any integers).
        batch_size: P·K.
        num_instances: K, images per identity in a batch.
        seed, epoch: the epoch's order depends only on these (and `labels`).
        num_replicas: R; P must be divisible by R (each B/R slice then holds P/R whole ids).
    """
    p, ids, members, rounds = _pk_layout(labels, batch_size, num_instances, num_replicas)
    k = num_instances
    rng = _epoch_rng(seed, epoch)
    pending = [rng.permutation(m) for m in members]  # per id: images not yet used in this cycle

    def draw(i):
        m = members[i]
        if len(m) < k:  # every image once, the rest with replacement
            return rng.permutation(np.concatenate([m, rng.choice(m, k - len(m))]))
        if len(pending[i]) < k:
            # Finish the cycle with its leftovers, then start the next one: every image once,
            # the leftovers last (they are used now), so no batch repeats an image and no image
            # runs more than one use ahead of another.
            others = rng.permutation(np.setdiff1d(m, pending[i], assume_unique=True))
            pending[i] = np.concatenate([pending[i], others, rng.permutation(pending[i])])
        chunk, pending[i] = pending[i][:k], pending[i][k:]
        return chunk

    batches = []
    for _ in range(rounds):
        order = rng.permutation(len(ids))
        short = -len(order) % p
        if short:  # top up the last group with distinct ids from the rest of the pass
            full = order[: len(order) - (p - short)]
            order = np.concatenate([order, rng.choice(full, short, replace=False)])
        for group in order.reshape(-1, p):
            batches.append(np.concatenate([draw(i) for i in group]))
    return np.stack(batches).astype(np.int64)
