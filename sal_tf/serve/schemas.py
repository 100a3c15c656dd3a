"""Request bodies of the JSON API (pydantic; strict numbers, unknown fields refused).

Limits that depend on the settings (`k` ≤ `--max_k`, items ≤ `--max_items`, the embedding width)
are checked by `sal_tf.serve.service.GalleryService`, with the same 422 answer.
"""

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

DEFAULT_K = 10


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIn(Strict):
    """One gallery item of `POST /v1/gallery`: the crop (base64) and its metadata."""

    id: StrictStr | None = Field(None, description="Any string; left out: a new uuid4 hex.")
    image_b64: StrictStr = Field(description="The crop: base64 of a JPEG/PNG/GIF/BMP/WebP file.")
    camera: StrictInt | None = None
    timestamp: StrictFloat | None = None
    path: StrictStr | None = Field(None, description="Where the crop came from: metadata only, never opened.")
    person_id: StrictInt | None = None


class GalleryAdd(Strict):
    items: list[ItemIn] = Field(min_length=1)


class SearchIn(Strict):
    """`POST /v1/search`: a query image or embedding, k, and the filters."""

    image_b64: StrictStr | None = None
    embedding: list[StrictFloat] | None = None
    k: StrictInt = DEFAULT_K
    exclude_camera: StrictInt | None = None
    cameras: list[StrictInt] | None = None
    time_range: tuple[StrictFloat, StrictFloat] | None = None


class AttentionIn(Strict):
    image_b64: StrictStr
