"""sal-serve over real HTTP: every route, its documented answer and schema, the API key, bad input, path-like
and refused ids, a keyless server against other sites, TF Serving mode, CORS; journeys, same_person and
grouped search over a store of tracklets as `sal-mtmc --store` fills it (issue 28).

One server per back end for the whole module, started as `python -m sal_tf.cli.serve` on
127.0.0.1 and stopped by its fixture (`tests/serve_support.py`): `server` runs a small embedding
model (random weights) in-process over the embedded faiss store, with an API key and small limits,
a calibration.json beside the model (so hits carry `same_person`) and a store that starts with a
few tracklet items of two people (`TRACKLETS`, crops under `--paths_root`);
`tf_server` gets the same model's embeddings from a TF Serving stand-in (an HTTP server loading
its exported SavedModel) and keeps its gallery in Milvus Lite, with CORS for one origin. The
attention route's PNG needs a SAL model: tests/test_serve_page.py checks it on the trained run.
"""

import glob
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

import numpy as np
import pytest

from tests.serve_support import ServerProcess, TFServingStandIn, b64, call, multipart, small_embedding_model

KEY = "test-key-5d41402abc4b2a76"
AUTH = {"Authorization": f"Bearer {KEY}"}
ORIGIN = "http://page.example"
MAX_ITEMS, MAX_K, MAX_UPLOAD_MB = 4, 20, 0.25
DIM = 64  # small_embedding_model
TRACKLETS = [  # sal-mtmc --store items (sal_tf/mtmc/store.py): (id, camera, start time, global id), shuffled
    ("run/c2/4", 2, 1_700_000_060.0, 1),
    ("run/c1/3", 1, 1_700_000_000.0, 1),
    ("run/c1/5", 1, 1_700_000_010.0, 2),
    ("run/c3/1", 3, 1_700_000_200.0, 1),
    ("run/c2/9", 2, 1_700_000_070.0, 2),
    ("run/c1/8", 1, 1_700_000_300.0, 1),  # back in camera 1
]


def quoted(item_id):
    return urllib.parse.quote(item_id, safe="")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A small embedding model (random weights) as a .keras file and as an exported SavedModel version."""
    from sal_tf.export.export_lib import export

    folder = tmp_path_factory.mktemp("serve_model")
    model = small_embedding_model()
    model.save(folder / "small.keras")
    write_calibration(folder / "calibration.json")  # found beside the model (calibration.find)
    saved_model = export(model, str(folder / "exports"), "sal", verify=False)["saved_model"]
    return {"keras": str(folder / "small.keras"), "saved_model": saved_model}


@pytest.fixture(scope="module")
def crops(data_root):
    """Encoded JPEG crops of the demo gallery: {file name: bytes}."""
    paths = sorted(glob.glob(os.path.join(data_root, "bounding_box_test", "*.jpg")))[:12]
    return {os.path.basename(p): open(p, "rb").read() for p in paths}


def write_calibration(path):
    """A calibration (sal_tf.evaluation.calibration) of made-up cross-camera distances: same ~0.1, different ~0.6."""
    from sal_tf.evaluation import calibration

    rng = np.random.default_rng(5)
    same, different = rng.gamma(4.0, 0.025, 2000), 0.6 + 0.15 * rng.standard_normal(20000)
    calibration.write(str(path), calibration.calibrate(same, different))


def tracklet_embeddings():
    """{global id: unit centre} and the unit embedding of each `TRACKLETS` item (near its person's centre)."""
    rng = np.random.default_rng(6)
    centres = {g: rng.standard_normal(DIM) for g in (1, 2)}
    rows = [centres[g] / np.linalg.norm(centres[g]) + 0.04 * rng.standard_normal(DIM) for *_, g in TRACKLETS]
    return {g: c / np.linalg.norm(c) for g, c in centres.items()}, np.stack(rows)


def fill_tracklet_store(store, mtmc_dir, crops):
    """The store as `sal-mtmc --store` leaves it: one item per tracklet, its best crop under `mtmc_dir`;
    plus person 3, whose paths point outside `mtmc_dir` (one through a link inside it)."""
    from sal_tf.gallery import Item, open_store

    images = list(crops.values())
    items = []
    for i, (item_id, camera, start, gid) in enumerate(TRACKLETS):
        crop = mtmc_dir / "crops" / str(gid) / f"c{camera}_{item_id.split('/')[-1]}.jpg"
        crop.parent.mkdir(parents=True, exist_ok=True)
        crop.write_bytes(images[i])
        items.append(Item(item_id, camera, start, str(crop), gid))
    outside = mtmc_dir.parent / "outside.jpg"
    outside.write_bytes(images[0])
    os.symlink(outside, mtmc_dir / "crops" / "link.jpg")
    items += [
        Item("run/c1/90", 1, 5.0, str(outside), 3),
        Item("run/c1/91", 1, 6.0, str(mtmc_dir / "crops/link.jpg"), 3),
    ]
    rng = np.random.default_rng(7)
    vectors = np.concatenate([tracklet_embeddings()[1], rng.standard_normal((2, DIM))])
    with open_store(str(store), dim=DIM) as opened:
        opened.add(vectors, items)


@pytest.fixture(scope="module")
def server(model_files, crops, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_api")
    fill_tracklet_store(folder / "store", folder / "mtmc", crops)
    args = [f"--model={model_files['keras']}", f"--store={folder / 'store'}", f"--api_key={KEY}"]
    args += [f"--paths_root={folder / 'mtmc'}"]
    args += [f"--max_items={MAX_ITEMS}", f"--max_k={MAX_K}", f"--max_upload_mb={MAX_UPLOAD_MB}"]
    process = ServerProcess(args, str(folder / "server.log"))
    process.folder = folder
    yield process
    process.stop_cleanly()


@pytest.fixture(scope="module")
def tf_server(model_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_tf")
    stand_in = TFServingStandIn(model_files["saved_model"])
    args = [f"--tf_serving={stand_in.url}", f"--store={folder / 'gallery.db'}", f"--cors_origins={ORIGIN}"]
    process = ServerProcess(args, str(folder / "server.log"))
    process.stand_in = stand_in
    yield process
    process.stop_cleanly()
    stand_in.close()


def count(url):
    return call("GET", url + "/healthz").json()["count"]


def add(url, items, headers=AUTH):
    return call("POST", url + "/v1/gallery", {"items": items}, headers)


def search(url, body, headers=AUTH):
    return call("POST", url + "/v1/search", body, headers)


def test_healthz_and_page_are_open_and_reveal_nothing_sensitive(server, model_files):
    health = call("GET", server.url + "/healthz")
    assert health.status == 200
    body = health.json()
    assert body["status"] == "ok" and body["store"] == "folder" and body["model"] == "keras:small.keras"
    assert isinstance(body["count"], int)
    assert KEY not in health.body.decode() and os.path.dirname(model_files["keras"]) not in health.body.decode()
    page = call("GET", server.url + "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "Person search" in page.body.decode() and KEY not in page.body.decode()
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = call("GET", server.url + "/static/app.js")
    assert script.status == 200 and b"/v1/search" in script.body
    assert "access-control-allow-origin" not in call("GET", server.url + "/healthz", headers={"Origin": ORIGIN}).headers


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/gallery", {"items": []}),
        ("DELETE", "/v1/gallery/x", None),
        ("GET", "/v1/gallery/x/image", None),
        ("POST", "/v1/search", {"embedding": [0.0], "k": 1}),
        ("POST", "/v1/attention", {"image_b64": ""}),
        ("GET", "/v1/journeys/1", None),
    ],
)
def test_every_v1_route_wants_the_api_key(server, method, path, body):
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": KEY}):
        reply = call(method, server.url + path, body, headers)
        assert reply.status == 401, (headers, reply)
        assert reply.headers["www-authenticate"] == "Bearer" and "Authorization" in reply.json()["error"]
    assert call(method, server.url + path, body, AUTH).status != 401


def test_add_search_image_delete_round_trip(server, crops):
    names = list(crops)[:3]
    items = [
        {"image_b64": b64(crops[n]), "camera": i + 1, "timestamp": 100.0 + i, "path": f"cam/{n}", "person_id": 7}
        for i, n in enumerate(names)
    ]
    before = count(server.url)
    added = add(server.url, items)
    assert added.status == 200, added
    ids = added.json()["ids"]
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and added.json()["count"] == before + 3
    found = search(server.url, {"image_b64": b64(crops[names[0]]), "k": 3})
    assert found.status == 200 and found.json()["took_ms"] > 0
    top = found.json()["results"][0]
    assert top["id"] == ids[0] and top["distance"] < 1e-3
    assert (top["camera"], top["timestamp"], top["path"], top["person_id"]) == (1, 100.0, f"cam/{names[0]}", 7)
    image = call("GET", f"{server.url}/v1/gallery/{ids[1]}/image", headers=AUTH)
    assert image.status == 200 and image.body == crops[names[1]] and image.headers["content-type"] == "image/jpeg"
    deleted = call("DELETE", f"{server.url}/v1/gallery/{ids[1]}", headers=AUTH)
    assert deleted.status == 200 and deleted.json()["deleted"] == ids[1] and count(server.url) == before + 2
    assert call("DELETE", f"{server.url}/v1/gallery/{ids[1]}", headers=AUTH).status == 404
    assert call("GET", f"{server.url}/v1/gallery/{ids[1]}/image", headers=AUTH).status == 404
    assert ids[1] not in [
        h["id"] for h in search(server.url, {"image_b64": b64(crops[names[1]]), "k": 5}).json()["results"]
    ]


def test_search_by_embedding_and_filters(server, crops):
    names = list(crops)[3:7]
    items = [
        {"id": f"filter-{i}", "image_b64": b64(crops[n]), "camera": i, "timestamp": float(i)}
        for i, n in enumerate(names)
    ]
    assert add(server.url, items).status == 200
    query = search(server.url, {"image_b64": b64(crops[names[0]]), "k": 1}).json()["results"][0]
    assert query["id"] == "filter-0"

    def ids(**filters):
        body = {"image_b64": b64(crops[names[0]]), "k": MAX_K, **filters}
        reply = search(server.url, body)
        assert reply.status == 200, reply
        return {h["id"] for h in reply.json()["results"]} & {f"filter-{i}" for i in range(4)}

    assert ids() == {"filter-0", "filter-1", "filter-2", "filter-3"}
    assert ids(exclude_camera=0) == {"filter-1", "filter-2", "filter-3"}
    assert ids(cameras=[1, 3]) == {"filter-1", "filter-3"}
    assert ids(time_range=[1.5, 3.0]) == {"filter-2", "filter-3"}


def test_search_by_embedding_width_of_the_model(server, crops):
    rng = np.random.default_rng(0)
    reply = search(server.url, {"embedding": rng.standard_normal(DIM).tolist(), "k": 5})
    assert reply.status == 200 and len(reply.json()["results"]) == 5
    distances = [h["distance"] for h in reply.json()["results"]]
    assert distances == sorted(distances) and 0 <= distances[0] <= 2


def test_journey_of_a_global_id_across_cameras_in_time_order(server, crops):
    reply = call("GET", server.url + "/v1/journeys/1", headers=AUTH)
    assert reply.status == 200, reply
    journey = reply.json()
    expected = sorted((t for t in TRACKLETS if t[3] == 1), key=lambda t: t[2])
    assert journey["global_id"] == 1
    assert [(a["id"], a["camera"], a["timestamp"], a["person_id"]) for a in journey["appearances"]] == expected
    assert [a["camera"] for a in journey["appearances"]] == [1, 2, 3, 1]
    images = list(crops.values())
    for appearance in journey["appearances"]:  # the best crop at each item's path, under --paths_root
        image = call("GET", f"{server.url}/v1/gallery/{quoted(appearance['id'])}/image", headers=AUTH)
        assert image.status == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.body == images[[t[0] for t in TRACKLETS].index(appearance["id"])]
        assert image.body == open(appearance["path"], "rb").read()
    # person 3's paths lie outside --paths_root (one through a link inside it): never served
    outside = call("GET", server.url + "/v1/journeys/3", headers=AUTH).json()["appearances"]
    assert [a["id"] for a in outside] == ["run/c1/90", "run/c1/91"]
    for appearance in outside:
        assert call("GET", f"{server.url}/v1/gallery/{quoted(appearance['id'])}/image", headers=AUTH).status == 404


@pytest.mark.parametrize(
    "global_id, status",
    [("999", 404), ("-5", 404), ("abc", 422), ("1.5", 422), (str(2**64), 422), ("1%200", 422)],
)
def test_a_journey_no_store_holds_is_a_4xx_naming_global_id(server, global_id, status):
    reply = call("GET", f"{server.url}/v1/journeys/{global_id}", headers=AUTH)
    assert reply.status == status, reply
    assert reply.json()["field"] == "global_id" and "Traceback" not in reply.json()["error"], reply


def test_same_person_follows_the_calibration_and_search_groups_by_global_id(server, model_files):
    from sal_tf.evaluation import calibration

    centres, _ = tracklet_embeddings()
    body = {"embedding": centres[1].tolist(), "k": 8}
    results = search(server.url, body).json()["results"]
    grouped = search(server.url, {**body, "group_by": "person_id"}).json()
    assert grouped["results"] == results and search(server.url, body).json()["groups"] is None
    # same_person: the model's calibration (calibration.json beside it) of each distance, falling with it
    cal = calibration.find(model_files["keras"])
    assert cal is not None and "same_person: the model's calibration" in server.log_tail(100_000)
    probabilities = [h["same_person"] for h in results]
    assert all(0.0 <= p <= 1.0 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    for hit in results:
        expected = calibration.probability(cal, hit["distance"], metric="euclidean")
        assert hit["same_person"] == pytest.approx(expected, abs=1e-4)
    assert probabilities[0] > 0.9 and probabilities[-1] < 0.1  # person 1's tracklets, then other people
    # groups: each person once, nearest person first, with their hits in the search's order
    groups = grouped["groups"]
    assert [g["person_id"] for g in groups][:2] == [1, 2]
    assert [h["id"] for h in groups[0]["hits"]] == [h["id"] for h in results if h["person_id"] == 1]
    assert len(groups[0]["hits"]) == 4 and {h["camera"] for h in groups[0]["hits"]} == {1, 2, 3}
    assert [g["distance"] for g in groups] == sorted(g["distance"] for g in groups)
    for group in groups:
        assert (group["distance"], group["same_person"]) == (
            group["hits"][0]["distance"],
            group["hits"][0]["same_person"],
        )
    grouped_ids = [h["id"] for g in groups for h in g["hits"]]
    assert sorted(grouped_ids) == sorted(h["id"] for h in results if h["person_id"] is not None)
    bad = search(server.url, {**body, "group_by": "camera"})
    assert bad.status == 422 and bad.json()["field"] == "group_by"


PATH_LIKE_IDS = ["../../etc/passwd", "a/b", "..", "x/../y/image", "50% off ü #?&"]


def test_path_like_ids_are_only_keys(server, crops):
    image = next(iter(crops.values()))
    items = [{"id": i, "image_b64": b64(image)} for i in PATH_LIKE_IDS[:MAX_ITEMS]]
    items2 = [{"id": i, "image_b64": b64(image)} for i in PATH_LIKE_IDS[MAX_ITEMS:]]
    assert add(server.url, items).json()["ids"] == PATH_LIKE_IDS[:MAX_ITEMS]
    assert add(server.url, items2).status == 200
    data_dir = server.folder / "store.crops"  # the crops are rows of one database: no file is named after an id
    assert set(os.listdir(data_dir)) <= {"crops.sqlite", "crops.sqlite-wal", "crops.sqlite-shm"}
    assert not (server.folder / "etc").exists() and not os.path.exists(data_dir / ".." / ".." / "etc")
    assert not [f for _, _, files in os.walk(server.folder) for f in files if f in ("passwd", "b", "image")]
    for item_id in PATH_LIKE_IDS:
        got = call("GET", f"{server.url}/v1/gallery/{quoted(item_id)}/image", headers=AUTH)
        assert got.status == 200 and got.body == image, item_id
    hits = search(server.url, {"image_b64": b64(image), "k": MAX_K}).json()["results"]
    assert set(PATH_LIKE_IDS) <= {h["id"] for h in hits}
    for item_id in PATH_LIKE_IDS:
        assert call("DELETE", f"{server.url}/v1/gallery/{quoted(item_id)}", headers=AUTH).status == 200, item_id
        assert call("GET", f"{server.url}/v1/gallery/{quoted(item_id)}/image", headers=AUTH).status == 404
    # a path that climbs out of /v1/gallery names an id, not a file
    assert call("GET", f"{server.url}/v1/gallery/..%2F..%2F..%2Fetc%2Fpasswd/image", headers=AUTH).status == 404


@pytest.mark.parametrize("item_id", ["nul\x00id", "esc\x1b[31mred", "x" * 4000])
def test_ids_no_store_holds_are_refused_by_name_without_a_traceback(server, item_id):
    for method, suffix in (("GET", "/image"), ("DELETE", "")):
        reply = call(method, f"{server.url}/v1/gallery/{quoted(item_id)}{suffix}", headers=AUTH)
        assert reply.status == 422 and reply.json()["field"] == "id", reply
    log = server.log_tail(100_000)
    assert "Traceback" not in log and "\x1b" not in log and "\x00" not in log


def test_multipart_upload_as_the_page_sends_it(server, crops):
    names = list(crops)[7:9]
    body, kind = multipart({"camera": "4", "timestamp": "12.5"}, [("files", n, crops[n]) for n in names])
    reply = call("POST", server.url + "/v1/gallery", body, {**AUTH, "Content-Type": kind})
    assert reply.status == 200, reply
    hit = search(server.url, {"image_b64": b64(crops[names[1]]), "k": 1}).json()["results"][0]
    assert hit["id"] == reply.json()["ids"][1] and (hit["camera"], hit["timestamp"], hit["path"]) == (4, 12.5, names[1])


def test_attention_of_a_model_without_attention_maps_is_501(server, crops):
    # the PNG itself: tests/test_serve_page.py (a SAL model)
    reply = call("POST", server.url + "/v1/attention", {"image_b64": b64(next(iter(crops.values())))}, AUTH)
    assert reply.status == 501 and "attention" in reply.json()["error"]


def _bad_cases(jpeg):
    big = b64(b"\xff\xd8\xff" + os.urandom(int(MAX_UPLOAD_MB * 1024 * 1024)))
    good = {"image_b64": b64(jpeg)}
    return {  # name: (path, body, status, field)
        "not an image": ("/v1/gallery", {"items": [{"image_b64": b64(b"just some text")}]}, 422, "items[0].image_b64"),
        "not base64": ("/v1/gallery", {"items": [{"image_b64": "@@@ not base64"}]}, 422, "items[0].image_b64"),
        "corrupt jpeg after a good one": (
            "/v1/gallery",
            {"items": [good, {"image_b64": b64(jpeg[:120])}]},
            422,
            "items[1].image_b64",
        ),
        "non-numeric camera": ("/v1/gallery", {"items": [{**good, "camera": "north"}]}, 422, "items[0].camera"),
        "non-numeric timestamp": ("/v1/gallery", {"items": [{**good, "timestamp": "noon"}]}, 422, "items[0].timestamp"),
        "unknown field": ("/v1/gallery", {"items": [{**good, "colour": "red"}]}, 422, "items[0].colour"),
        "no image": ("/v1/gallery", {"items": [{"camera": 1}]}, 422, "items[0].image_b64"),
        "no items": ("/v1/gallery", {"items": []}, 422, "items"),
        "too many items": ("/v1/gallery", {"items": [good] * (MAX_ITEMS + 1)}, 422, "items"),
        "not JSON": ("/v1/gallery", b"{items: oops", 422, "body"),
        "over the upload limit": ("/v1/gallery", {"items": [{"image_b64": big}]}, 413, "body"),
        "wrong embedding width": ("/v1/search", {"embedding": [0.1] * 7, "k": 3}, 422, "embedding"),
        "zero embedding": ("/v1/search", {"embedding": [0.0] * DIM, "k": 3}, 422, "embedding"),
        "k zero": ("/v1/search", {"embedding": [0.1] * DIM, "k": 0}, 422, "k"),
        "k over max_k": ("/v1/search", {"embedding": [0.1] * DIM, "k": MAX_K + 1}, 422, "k"),
        "k not a number": ("/v1/search", {"embedding": [0.1] * DIM, "k": "5"}, 422, "k"),
        "image and embedding": ("/v1/search", {**good, "embedding": [0.1] * DIM}, 422, "image_b64"),
        "neither image nor embedding": ("/v1/search", {"k": 3}, 422, "image_b64"),
        "search image not an image": ("/v1/search", {"image_b64": b64(b"GIF89a but broken"), "k": 3}, 422, "image_b64"),
        "camera list of text": ("/v1/search", {"embedding": [0.1] * DIM, "cameras": ["a"]}, 422, "cameras[0]"),
        "reversed time range": ("/v1/search", {"embedding": [0.1] * DIM, "time_range": [5.0, 1.0]}, 422, "time_range"),
        "non-numeric exclude_camera": ("/v1/search", {**good, "exclude_camera": "c1"}, 422, "exclude_camera"),
        "no camera in the list": ("/v1/search", {"embedding": [0.1] * DIM, "cameras": []}, 422, "cameras"),
        "camera past 64 bits": ("/v1/gallery", {"items": [{**good, "camera": 2**63}]}, 422, "items[0].camera"),
        "10,000-deep JSON": ("/v1/gallery", b'{"items": ' + b"[" * 10000 + b"]" * 10000 + b"}", 422, "body"),
        "65,537 values": ("/v1/search", b'{"embedding": [' + b"0," * 65536 + b"0]}", 422, "body"),
        "attention not an image": ("/v1/attention", {"image_b64": b64(b"<html>")}, 422, "image_b64"),
    }


BAD_CASE_NAMES = list(_bad_cases(b"\xff\xd8\xff").keys())


@pytest.mark.parametrize("case", BAD_CASE_NAMES)
def test_bad_input_is_a_4xx_naming_the_field_and_adds_nothing(server, crops, case):
    path, body, status, field = _bad_cases(next(iter(crops.values())))[case]
    before = count(server.url)
    headers = dict(AUTH, **({"Content-Type": "application/json"} if isinstance(body, bytes) else {}))
    reply = call("POST", server.url + path, body, headers)
    assert reply.status == status, reply
    error = reply.json()
    assert error["field"] == field and field in error["error"], error
    assert "Traceback" not in error["error"] and len(error["error"]) < 300
    assert count(server.url) == before
    assert call("GET", server.url + "/healthz").status == 200


def test_bad_multipart_fields_name_the_field(server, crops):
    name, data = next(iter(crops.items()))
    before = count(server.url)
    for fields, files, field in [
        ({"camera": "north"}, [("files", name, data)], "camera"),
        ({"camera": "1"}, [], "files"),
        ({}, [("files", "notes.txt", b"hello")], "files[0]"),
        ({}, [("files", name, data)] * (MAX_ITEMS + 1), "files"),
    ]:
        body, kind = multipart(fields, files)
        reply = call("POST", server.url + "/v1/gallery", body, {**AUTH, "Content-Type": kind})
        assert reply.status == 422 and reply.json()["field"] == field, reply
    assert count(server.url) == before


def test_tf_serving_mode_gives_the_in_process_models_numbers(server, tf_server, crops):
    a, b = list(crops)[9:11]
    items = [{"id": n, "image_b64": b64(crops[n])} for n in (a, b)]
    assert add(tf_server.url, items, headers={}).status == 200
    assert add(server.url, items).status == 200
    assert tf_server.stand_in.requests >= 2  # the probe at start-up and the add
    health = call("GET", tf_server.url + "/healthz").json()
    assert (health["store"], health["model"]) == ("milvus", "tf_serving:sal") and health["count"] == 2

    def distance_a_to_b(url, headers):
        hits = search(url, {"image_b64": b64(crops[a]), "k": MAX_K}, headers).json()["results"]
        assert hits[0]["id"] == a and hits[0]["distance"] < 1e-3
        return next(h["distance"] for h in hits if h["id"] == b)

    # the SavedModel behind TF Serving and the .keras file in-process: the same embeddings
    assert distance_a_to_b(tf_server.url, {}) == pytest.approx(distance_a_to_b(server.url, AUTH), abs=1e-4)
    image = call("GET", f"{tf_server.url}/v1/gallery/{quoted(a)}/image")
    assert image.status == 200 and image.body == crops[a]
    attention = call("POST", tf_server.url + "/v1/attention", {"image_b64": b64(crops[a])})
    assert attention.status == 501 and "TF Serving" in attention.json()["error"]
    hits = search(tf_server.url, {"image_b64": b64(crops[a]), "k": 2}, {}).json()["results"]
    assert [h["same_person"] for h in hits] == [None, None]  # TF Serving: no model file, no calibration
    bad = add(tf_server.url, [{"image_b64": b64(crops[a][:100])}], headers={})
    assert bad.status == 422 and bad.json()["field"] == "items[0].image_b64" and count(tf_server.url) == 2


def test_a_keyless_server_takes_no_cross_site_form_and_no_foreign_host(tf_server, crops):
    # what a page on another site can send without a CORS preflight: a text/plain POST
    body = json.dumps({"items": [{"id": "from-elsewhere", "image_b64": b64(next(iter(crops.values())))}]})
    before = count(tf_server.url)
    plain = call("POST", tf_server.url + "/v1/gallery", body.encode(), {"Content-Type": "text/plain"})
    assert plain.status == 415 and plain.json()["field"] == "Content-Type", plain
    # DNS rebinding: the page's own name in Host, the loopback address underneath
    port = urllib.parse.urlsplit(tf_server.url).port
    rebound = call("POST", tf_server.url + "/v1/gallery", body.encode(), {"Host": f"evil.example:{port}"})
    assert rebound.status == 400 and rebound.json()["field"] == "Host", rebound
    assert call("GET", tf_server.url + "/healthz", headers={"Host": "evil.example"}).status == 400
    assert call("GET", tf_server.url + "/healthz", headers={"Host": f"localhost:{port}"}).status == 200
    assert count(tf_server.url) == before
    assert "no API key: /v1 open to every program on this machine" in tf_server.start_line


def test_a_journey_over_milvus_lite(tf_server, crops):
    images = list(crops.values())
    items = [
        {"id": f"mv/c{c}/{t}", "image_b64": b64(images[i]), "camera": c, "timestamp": t, "person_id": 42}
        for i, (c, t) in enumerate([(2, 20.0), (1, 10.0), (3, 30.0)])
    ]
    assert add(tf_server.url, items, headers={}).status == 200
    journey = call("GET", tf_server.url + "/v1/journeys/42").json()
    assert [(a["id"], a["camera"]) for a in journey["appearances"]] == [
        ("mv/c1/10.0", 1),
        ("mv/c2/20.0", 2),
        ("mv/c3/30.0", 3),
    ]
    assert call("GET", tf_server.url + "/v1/journeys/43").status == 404


ANSWERS = {  # BUILD.md "Search service": the fields of each JSON answer, and the schema each is documented by
    "HealthOut": {"status", "count", "store", "model"},
    "AddOut": {"ids", "count"},
    "DeleteOut": {"deleted", "count"},
    "SearchOut": {"results", "groups", "took_ms"},
    "HitOut": {"id", "distance", "camera", "timestamp", "path", "person_id", "same_person"},
    "GroupOut": {"person_id", "distance", "same_person", "hits"},
    "JourneyOut": {"global_id", "appearances"},
    "AppearanceOut": {"id", "camera", "timestamp", "path", "person_id"},
    "ErrorOut": {"error", "field"},
}
ROUTES = {  # every route of the API: (path in the schema, method) → its 200 answer's schema (None: not JSON)
    ("/healthz", "get"): "HealthOut",
    ("/v1/gallery", "post"): "AddOut",
    ("/v1/gallery/{item_id}", "delete"): "DeleteOut",
    ("/v1/gallery/{item_id}/image", "get"): None,
    ("/v1/search", "post"): "SearchOut",
    ("/v1/journeys/{global_id}", "get"): "JourneyOut",
    ("/v1/attention", "post"): None,
}


def test_openapi_lists_every_route_with_its_schemas_and_docs_is_open(server):
    reply = call("GET", server.url + "/openapi.json")  # open, like /healthz
    assert reply.status == 200
    schema = reply.json()
    assert {(p, m) for p, ops in schema["paths"].items() for m in ops} == set(ROUTES)
    components = schema["components"]["schemas"]
    for (path, method), answer in ROUTES.items():
        operation = schema["paths"][path][method]
        content = operation["responses"]["200"]["content"]
        if answer:
            assert content["application/json"]["schema"]["$ref"] == f"#/components/schemas/{answer}"
        else:
            assert all(kind.startswith("image/") for kind in content)
        if method == "post":
            assert (
                operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1] in components
            )
        if path.startswith("/v1"):
            assert operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
            assert operation["security"] == [{"HTTPBearer": []}]
    for name, fields in ANSWERS.items():
        assert set(components[name]["properties"]) == fields, name
    assert "multipart/form-data" in schema["paths"]["/v1/gallery"]["post"]["requestBody"]["content"]
    assert "ItemIn" in components and KEY not in reply.body.decode() and "filter-0" not in reply.body.decode()
    docs = call("GET", server.url + "/docs")
    assert docs.status == 200 and b"/openapi.json" in docs.body and b"swagger-ui" in docs.body
    assert "script-src https://cdn.jsdelivr.net 'sha256-" in docs.headers["content-security-policy"]


def test_every_answer_keeps_its_documented_fields(server, crops):
    image = b64(next(iter(crops.values())))
    answers = {
        "HealthOut": call("GET", server.url + "/healthz"),
        "AddOut": add(server.url, [{"id": "fields-1", "image_b64": image}]),
        "SearchOut": search(server.url, {"image_b64": image, "k": 2}),
        "ErrorOut": search(server.url, {"image_b64": image, "k": 0}),
        "JourneyOut": call("GET", server.url + "/v1/journeys/2", headers=AUTH),
    }
    answers["DeleteOut"] = call("DELETE", server.url + "/v1/gallery/fields-1", headers=AUTH)
    for name, reply in answers.items():
        assert set(reply.json()) == ANSWERS[name], (name, reply)
    assert all(set(hit) == ANSWERS["HitOut"] for hit in answers["SearchOut"].json()["results"])
    assert all(set(a) == ANSWERS["AppearanceOut"] for a in answers["JourneyOut"].json()["appearances"])
    grouped = search(server.url, {"image_b64": image, "k": 2, "group_by": "person_id"}).json()
    assert all(set(g) == ANSWERS["GroupOut"] for g in grouped["groups"])


def test_cors_only_for_the_given_origins(server, tf_server):
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = call("OPTIONS", tf_server.url + "/v1/search", headers=preflight)
    assert allowed.status == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    other = call("OPTIONS", tf_server.url + "/v1/search", headers={**preflight, "Origin": "http://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"
    assert "access-control-allow-origin" not in call("OPTIONS", server.url + "/v1/search", headers=preflight).headers


def test_responses_are_not_held_back_by_nagle(server):
    # one keep-alive connection: with Nagle on the server's socket each answer waited ~40 ms for an ACK
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server.url).netloc)
    seconds = []
    for _ in range(20):
        start = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        seconds.append(time.perf_counter() - start)
    connection.close()
    assert sorted(seconds)[10] < 0.02, seconds


def test_concurrent_searches_get_their_own_answers(server):
    # searches that arrive together are answered by one store search per filter set (sal_tf/serve/batching.py)
    rng = np.random.default_rng(3)
    bodies = [{"embedding": rng.standard_normal(DIM).tolist(), "k": 3 + i % 4} for i in range(12)]
    for i, body in enumerate(bodies):
        if i % 3 == 1:
            body["exclude_camera"] = 1
    alone = [search(server.url, body).json()["results"] for body in bodies]
    together = [None] * len(bodies)

    def one(i):
        together[i] = search(server.url, bodies[i]).json()["results"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [[h["id"] for h in r] for r in together] == [[h["id"] for h in r] for r in alone]
    assert all(len(r) == b["k"] for r, b in zip(together, bodies))


def test_the_command_refuses_bad_flags_with_one_error_line(tmp_path):
    from sal_tf.serve import ServeSettings
    from tests.conftest import run_cmd

    # a keyless server beyond loopback is refused before anything loads or binds
    args = ["--model=runs/none", "--host=0.0.0.0", f"--store={tmp_path}/s"]
    out = run_cmd([sys.executable, "-m", "sal_tf.cli.serve", *args])
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --host=0.0.0.0 listens beyond this machine") and "--insecure_no_key" in last
    assert "Traceback" not in out.stderr and not os.path.exists(tmp_path / "s")
    with pytest.raises(ValueError, match=r"^--max_k must be >= 1. Received: 0$"):
        ServeSettings(model="m", store="s", max_k=0)
    for host, key, insecure in [("127.0.0.1", None, False), ("0.0.0.0", "k", False), ("0.0.0.0", None, True)]:
        ServeSettings(model="m", store="s", host=host, api_key=key, insecure_no_key=insecure)  # accepted


def test_the_calibration_comes_from_the_flag_else_beside_the_model(model_files, tmp_path):
    # (the command prints a ValueError as one `error:` line and exits 2, as above)
    from sal_tf.serve import ServeSettings
    from sal_tf.serve.people import open_calibration

    def opened(**settings):
        return open_calibration(ServeSettings(store="s", **settings))

    beside, source = opened(model=model_files["keras"])
    assert beside["knots"] and source == "the model's calibration"
    assert opened(model=model_files["saved_model"])[0] is None  # an export folder without one: null
    assert opened(tf_serving="http://tfs:8501/v1/models/sal")[0] is None
    (tmp_path / "results.json").write_text(json.dumps({"stage2": {"mAP": 0.5, "calibration": beside}}))
    assert opened(tf_serving="http://x:8501/v1/models/sal", calibration=str(tmp_path / "results.json"))[0] == beside
    with pytest.raises(ValueError, match=r"^--calibration=.*missing.json: no such file"):
        opened(model=model_files["keras"], calibration=str(tmp_path / "missing.json"))
    (tmp_path / "other.json").write_text('{"mAP": 0.5}')
    with pytest.raises(ValueError, match=r"^--calibration: .*other.json: holds no calibration"):
        opened(model=model_files["keras"], calibration=str(tmp_path / "other.json"))
