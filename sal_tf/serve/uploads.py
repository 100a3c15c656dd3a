"""Multipart uploads of `POST /v1/gallery` (the web page's form): `files` plus optional fields for all of them.

Form fields: `files` (one or more image files), and optionally `camera` (integer), `timestamp`
(number), `person_id` (integer), applied to every file; `id` (only with one file). Each item's
`path` is its file name (metadata only).
"""

import math

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from sal_tf.gallery import Item
from sal_tf.serve.failures import BadInput
from sal_tf.serve.service import Upload

FORM_FIELDS = ("files", "camera", "timestamp", "person_id", "id")
FORM_PARTS = 1000  # the parser's bound on parts (Starlette's default); the service checks --max_items


def form_number(form, name, kind):
    """The form field `name` as `kind` (int or float), or None when absent or empty."""
    text = form.get(name)
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    expected = "an integer" if kind is int else "a number"
    if not isinstance(text, str):
        raise BadInput(name, expected, "a file")
    try:
        value = kind(text.strip())
    except ValueError:
        raise BadInput(name, expected, repr(text[:40])) from None
    if kind is float and not math.isfinite(value):
        raise BadInput(name, "a finite number", repr(text[:40]))
    return value


async def form_uploads(request):
    """The `Upload`s of a multipart form (see the module docstring)."""
    try:
        form = await request.form(max_files=FORM_PARTS, max_fields=len(FORM_FIELDS) * 2)
    except (MultiPartException, HTTPException, ClientDisconnect) as e:
        detail = getattr(e, "message", None) or getattr(e, "detail", None) or "the client left"
        raise BadInput("files", f"a multipart form with the fields {', '.join(FORM_FIELDS)}", detail) from None
    unknown = sorted(set(form.keys()) - set(FORM_FIELDS))
    if unknown:
        raise BadInput(unknown[0], f"only the form fields {', '.join(FORM_FIELDS)}", "an unknown field")
    files = form.getlist("files")
    if not files or any(isinstance(f, str) for f in files):
        raise BadInput("files", "one or more image files (multipart field 'files')", "no file")
    item_id = form.get("id") or None
    if item_id is not None and len(files) != 1:
        raise BadInput("id", "an id only with a single file", f"{len(files)} files")
    camera, timestamp = form_number(form, "camera", int), form_number(form, "timestamp", float)
    person_id = form_number(form, "person_id", int)
    uploads = []
    for i, f in enumerate(files):
        item = Item(item_id, camera, timestamp, f.filename, person_id)
        uploads.append(Upload(await f.read(), f"files[{i}]", item))
    await form.close()
    return uploads
