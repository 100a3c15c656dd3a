"""How `sal-search query` shows its results: one entry per query, its hits in the one JSON form of
a hit (`sal_tf.gallery.Hit.to_json`) with their rank (and `match` where both person ids are known);
printed as a table or JSON lines, written to --output, drawn to --picture.

    {"query": "q/0001_c1s2_000999_01.jpg", "query_person_id": 1, "query_camera": 1,
     "results": [{"rank": 1, "id", "distance", "camera", "timestamp", "path", "person_id", "match": true}, ...]}
"""

import datetime
import json

from absl import flags

from sal_tf.utils import write_atomically

FLAGS = flags.FLAGS


def entries(hits, query_paths, query_person_ids, query_cameras):
    """JSON-ready entries (module docstring) of each query's list of `Hit`s."""
    out = []
    for found, path, person, camera in zip(hits, query_paths, query_person_ids, query_cameras):
        entry = {"query": str(path), "results": []}
        if person is not None:
            entry["query_person_id"] = int(person)
        if camera is not None:
            entry["query_camera"] = int(camera)
        for rank, hit in enumerate(found, start=1):
            row = {"rank": rank, **hit.to_json()}
            if person is not None and hit.person_id is not None:
                row["match"] = hit.person_id == person
            entry["results"].append(row)
        out.append(entry)
    return out


def _time_text(timestamp):
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_table(results, distance="euclidean"):
    """Plain-text table of `entries`: a block per query.

    Cameras are shown as the file names number them (`c1`); a time column (UTC) appears when the
    hits carry timestamps (gallery stores).
    """
    lines = []
    for entry in results:
        about = [f"pid {entry['query_person_id']}"] if "query_person_id" in entry else []
        about += [f"c{entry['query_camera']}"] if entry.get("query_camera") is not None else []
        lines.append(f"query {entry['query']}" + (f" ({', '.join(about)})" if about else ""))
        timed = any(hit.get("timestamp") is not None for hit in entry["results"])
        time_head = f"  {'time (UTC)':19s}" if timed else ""
        lines.append(
            f"  {'rank':>4s}  {distance + ' dist':>14s}  {'pid':>6s}  {'cam':>4s}  {'match':5s}{time_head}  path"
        )
        for hit in entry["results"]:
            pid_text = "-" if hit.get("person_id") is None else str(hit["person_id"])
            cam_text = "-" if hit.get("camera") is None else f"c{hit['camera']}"
            match = {True: "yes", False: "no"}.get(hit.get("match"), "-")
            time_text = f"  {_time_text(hit.get('timestamp')):19s}" if timed else ""
            where = hit.get("path") or f"id {hit.get('id')}"
            lines.append(
                f"  {hit['rank']:4d}  {hit['distance']:14.4f}  {pid_text:>6s}  {cam_text:>4s}  {match:5s}{time_text}  {where}"
            )
        if not entry["results"]:
            lines.append("  (no gallery item passes the filters)")
    return "\n".join(lines)


def write_jsonl(path, results):
    """Writes one JSON object per query (atomically)."""
    write_atomically(path, "".join(json.dumps(entry) + "\n" for entry in results))


def show(results, distance):
    """Prints `entries` (--format), and writes --output and --picture when given."""
    if FLAGS.format == "jsonl":
        for entry in results:
            print(json.dumps(entry))
    else:
        print(format_table(results, distance))
    if FLAGS.output:
        write_jsonl(FLAGS.output, results)
    if FLAGS.picture:
        from sal_tf.inference import pictures

        pictures.search_picture(results, FLAGS.picture, max_queries=FLAGS.picture_queries)
        print(f"Wrote the rank lists of {min(len(results), FLAGS.picture_queries)} queries to {FLAGS.picture}")
