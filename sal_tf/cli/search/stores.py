"""`sal-search add / delete / stats / repair`: the commands on a gallery store (`sal_tf.gallery`)."""

import json
import os

from absl import flags

from sal_tf.cli.search import inputs
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def open_store(dim=None):
    """The store --store names (created by `add`, given `dim`); a UserError for what a user can fix."""
    from sal_tf.gallery import StoreCorruptedError, StoreLockedError, open_store

    try:
        return open_store(FLAGS.store, dim=dim, distance=FLAGS.distance, index=FLAGS.index)
    except FileNotFoundError:
        raise sal_app.UserError(
            f"--store {FLAGS.store!r} holds no gallery store; create one with `add` (see --help)."
        ) from None
    except (StoreLockedError, StoreCorruptedError, ConnectionError, ImportError) as e:
        raise sal_app.UserError(str(e)) from None


def _model_name(model):
    return os.path.abspath(model) if os.path.exists(model) else model


def add():
    if bool(FLAGS.embeddings) == bool(FLAGS.images):
        raise sal_app.UserError("add: give exactly one of --embeddings=FILE.npz or --images=... with --model.")
    gallery = inputs.embeddings(FLAGS.embeddings or FLAGS.images, FLAGS.model, "--images")
    if len(gallery.paths) == 0:
        raise sal_app.UserError("add: nothing to add (no embeddings).")
    items = inputs.gallery_items(gallery)
    with open_store(dim=gallery.embeddings.shape[1]) as store:
        before = store.count()
        ids = store.add(gallery.embeddings, items)
        if gallery.model and store.model is None:
            store.record_model(_model_name(gallery.model))
        replaced = before + len(ids) - store.count()
        known = sum(item.camera is not None for item in items)
        print(
            f"Added {len(ids)} item(s) to {store.location} ({store.kind}, {store.dim}-d"
            f"{f', {replaced} replaced' if replaced else ''}); it holds {store.count()}. "
            f"Cameras known for {known}/{len(ids)}."
        )


def delete(ids):
    if not ids:
        raise sal_app.UserError("delete: give the ids to delete after the command: delete --store=S ID [ID ...]")
    with open_store() as store:
        unknown = [i for i in ids if not store.delete(i)]
        print(f"Deleted {len(ids) - len(unknown)} item(s) from {store.location}; it holds {store.count()}.")
    if unknown:
        raise sal_app.UserError(
            f"no item with id {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )


def stats():
    with open_store() as store:
        print(json.dumps(store.stats(), indent=2, sort_keys=True))


def repair():
    """Rewrites a damaged folder store's log with every intact record and says what it kept and dropped."""
    from sal_tf.gallery import StoreLockedError, folder_store, milvus_store

    if milvus_store.is_milvus_location(FLAGS.store):
        raise sal_app.UserError("repair works on a folder store; a Milvus store keeps (and repairs) its own log.")
    try:
        report = folder_store.FolderStore.repair(FLAGS.store)
    except FileNotFoundError:
        raise sal_app.UserError(f"--store {FLAGS.store!r} holds no gallery store.") from None
    except StoreLockedError as e:
        raise sal_app.UserError(str(e)) from None
    if not report.dropped and not report.recovered:
        print(f"The log of {FLAGS.store} is intact ({report.kept} record(s)); nothing changed.")
        return
    spans = ", ".join(f"bytes {a}-{b}" for a, b in report.dropped[:5]) + (" ..." if len(report.dropped) > 5 else "")
    print(
        f"Repaired {FLAGS.store}: kept {report.kept} intact record(s) ({report.recovered} with a damaged header "
        f"whose payload still matched its CRC); dropped {len(report.dropped)} damaged span(s), "
        f"{report.dropped_bytes} bytes{f' ({spans})' if spans else ''}: the changes in them are lost. "
        "The damaged log is kept in the store folder as damaged-log-*."
    )
