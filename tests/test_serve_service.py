"""`GalleryService.add` over real HTTP: a batch's crops written, then its vectors added, under one write lock.

A sal-serve process (a small random-weight model, the embedded store) gets adds and deletes of the
same ids at the same time, round after round. Once a round's requests have all answered: an item
the store holds has its crop (a delete never removed a crop of an add that was not yet in the
store), and each id's crop is the image whose embedding the store holds (two adds of the same ids
wrote their crops and added their vectors in the same order, not interleaved).
"""

import glob
import os
import threading
import urllib.parse

import pytest

from tests.serve_support import ServerProcess, b64, call, small_embedding_model

ROUNDS = 10
BATCH = 16  # ids per request: each round races them all


@pytest.fixture(scope="module")
def served(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_service")
    small_embedding_model().save(folder / "small.keras")
    process = ServerProcess([f"--model={folder / 'small.keras'}", f"--store={folder / 'store'}"], str(folder / "log"))
    files = sorted(glob.glob(os.path.join(data_root, "bounding_box_test", "*.jpg")))
    crops = [open(p, "rb").read() for p in files[: 2 * BATCH]]
    assert len(set(crops)) == 2 * BATCH
    process.images = crops[:BATCH], crops[BATCH:]  # two distinct images for each id
    process.ids = [f"racing/{i}" for i in range(BATCH)]
    yield process
    process.stop_cleanly()


def item_url(url, item_id):
    return f"{url}/v1/gallery/{urllib.parse.quote(item_id, safe='')}"


def at_once(*calls):
    """Runs the calls (no-argument functions) in threads started together; their results in order."""
    results, start = [None] * len(calls), threading.Barrier(len(calls))

    def run(i):
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def add(url, ids, images):
    items = [{"id": i, "image_b64": b64(data)} for i, data in zip(ids, images)]
    return lambda: call("POST", url + "/v1/gallery", {"items": items}).status


def delete_each(url, ids):
    return lambda: [call("DELETE", item_url(url, i)).status for i in ids]


def nearest(url, data):
    """(id, distance) of the gallery's nearest item to an image."""
    hit = call("POST", url + "/v1/search", {"image_b64": b64(data), "k": 1}).json()["results"][0]
    return hit["id"], hit["distance"]


def test_deletes_racing_an_add_of_the_same_ids_never_leave_an_item_without_its_crop(served):
    url, ids, (first, second) = served.url, served.ids, served.images
    for n in range(ROUNDS):
        assert add(url, ids, first)() == 200
        added, deleted = at_once(add(url, ids, second), delete_each(url, ids))
        assert added == 200 and deleted == [200] * BATCH  # each id held throughout: deleted, or re-added
        for item_id, data in zip(ids, second):
            image = call("GET", item_url(url, item_id) + "/image")
            held = call("DELETE", item_url(url, item_id)).status == 200  # and the gallery is empty again
            expected = (200, data) if held else (404, image.body)
            assert (image.status, image.body) == expected, (n, item_id, held, image)
    assert call("GET", url + "/healthz").json()["count"] == 0


def test_two_adds_of_the_same_ids_keep_the_crop_of_each_vector_kept(served):
    url, ids, (first, second) = served.url, served.ids, served.images
    for n in range(ROUNDS):
        assert at_once(add(url, ids, first), add(url, ids, second)) == [200, 200]
        for item_id, a, b in zip(ids, first, second):
            image = call("GET", item_url(url, item_id) + "/image")
            assert image.status == 200 and image.body in (a, b)
            hit, distance = nearest(url, image.body)
            assert hit == item_id and distance < 1e-3, (n, item_id, hit, distance)  # the crop's own vector
    for item_id in ids:
        assert call("DELETE", item_url(url, item_id)).status == 200
