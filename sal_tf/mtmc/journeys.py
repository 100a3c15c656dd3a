"""Global ids → each person's journey through the cameras (`journeys.json`, crops) and the result files.

A journey (one per global id, in order of first appearance):

    {"global_id": 3, "cameras": ["c1", "c2"], "first_seen": ISO or null, "last_seen": ..., "seconds": [s0, s1],
     "appearances": [{"camera", "track", "first_frame", "last_frame", "start_time", "end_time",
                      "start_seconds", "end_seconds", "boxes", "crop"}, ...]}

one appearance per tracklet (a camera's local track), in time order; `crop` is the tracklet's best
crop (`crops/<global id>/<camera>_<track>.jpg`, relative to the output folder); times are ISO 8601
wall-clock times when the camera has a start time, and seconds on the run's common time line.
"""

import os

from sal_tf.tracking import mot


def global_ids(groups, tracklets):
    """{(camera, local track): global id}: groups numbered 1, 2, … in their order."""
    return {(tracklets[m].camera, tracklets[m].track): gid for gid, g in enumerate(groups, 1) for m in g}


def result_rows(tracklets, ids, camera):
    """(frame, global id, x1, y1, x2, y2, score) rows of one camera, sorted by frame then id."""
    rows = []
    for t in tracklets:
        if t.camera == camera:
            gid = ids[(t.camera, t.track)]
            rows += [(int(f), gid, *map(float, b), float(s)) for f, b, s in zip(t.frames, t.boxes, t.scores)]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def write_results(output_dir, cameras, tracklets, ids):
    """Writes `<output_dir>/<camera>.txt` (MOTChallenge results, global ids); returns {camera: MOT rows [N, 10]}."""
    out = {}
    for camera in cameras:
        path = os.path.join(output_dir, f"{camera.name}.txt")
        mot.write_results(path, result_rows(tracklets, ids, camera.name))
        out[camera.name] = mot.read_rows(path, "result file")
    return out


def save_crop(output_dir, relative, crop):
    from PIL import Image

    path = os.path.join(output_dir, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(crop).save(path, quality=90)


def journeys(groups, tracklets, cameras, output_dir=None):
    """The journeys (see the module docstring); with `output_dir`, the crops are written under it."""
    by_name, out = {c.name: c for c in cameras}, []
    for gid, members in enumerate(groups, 1):
        appearances = []
        for t in sorted((tracklets[m] for m in members), key=lambda t: (t.start, t.camera)):
            camera = by_name[t.camera]
            crop = f"crops/{gid}/{t.camera}_{t.track}.jpg" if t.crops else None
            if crop and output_dir:
                save_crop(output_dir, crop, t.crops[0][2])
            appearances.append({
                "camera": t.camera, "track": t.track, "first_frame": t.first, "last_frame": t.last,
                "start_time": camera.wall_time(t.first), "end_time": camera.wall_time(t.last),
                "start_seconds": round(t.start, 3), "end_seconds": round(t.end, 3), "boxes": len(t.frames),
                "crop": crop,
            })  # fmt: skip
        visited = [a["camera"] for a in appearances]
        out.append({
            "global_id": gid,
            "cameras": [c for i, c in enumerate(visited) if i == 0 or visited[i - 1] != c],
            "first_seen": appearances[0]["start_time"], "last_seen": max((a["end_time"] or "") for a in appearances) or None,
            "seconds": [appearances[0]["start_seconds"], max(a["end_seconds"] for a in appearances)],
            "appearances": appearances,
        })  # fmt: skip
    return out


def frames_of(tracklets, ids, camera):
    """{frame: [(global id, x1, y1, x2, y2, score)]} of one camera (for the annotated clip)."""
    out = {}
    for frame, gid, *box in result_rows(tracklets, ids, camera):
        out.setdefault(frame, []).append((gid, *box))
    return out
