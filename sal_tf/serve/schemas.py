"""The JSON API's bodies (pydantic): requests (strict numbers, unknown fields refused) and responses.

The request models check types only; limits that depend on the settings (`k` ≤ `--max_k`, items ≤
`--max_items`, image pixels) are the service's (`sal_tf.serve.service.GalleryService`), and the
values the store keeps (id length, metadata ranges, filters) the store's, all with the same 422.
The response models are the documented form of each answer (`/openapi.json`, BUILD.md "Search service").
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

DEFAULT_K = 10


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIn(Strict):
    """One gallery item of `POST /v1/gallery`: the crop (base64) and its metadata."""

    id: StrictStr | None = Field(None, description="Any string up to 1,024 UTF-8 bytes; left out: a new uuid4 hex.")
    image_b64: StrictStr = Field(description="The crop: base64 of a JPEG/PNG/GIF/BMP/WebP file.")
    camera: StrictInt | None = None
    timestamp: StrictFloat | None = None
    path: StrictStr | None = Field(None, description="Where the crop came from: metadata only, never opened.")
    person_id: StrictInt | None = None


class GalleryAdd(Strict):
    """`POST /v1/gallery` as JSON: 1 to `--max_items` items."""

    items: list[ItemIn]


class SearchIn(Strict):
    """`POST /v1/search`: a query image or embedding, k, and the filters."""

    image_b64: StrictStr | None = Field(None, description="The query image (base64); or give `embedding`.")
    embedding: list[StrictFloat] | None = Field(None, description="The query embedding (the gallery's width).")
    k: StrictInt = Field(DEFAULT_K, description="Hits wanted, 1..--max_k.")
    exclude_camera: StrictInt | None = Field(None, description="Leave out this camera's items.")
    cameras: list[StrictInt] | None = Field(None, description="Only these cameras' items (at least one).")
    time_range: tuple[StrictFloat, StrictFloat] | None = Field(None, description="[t0, t1], t0 <= t1.")
    group_by: Literal["person_id"] | None = Field(
        None, description='"person_id": also answer the hits grouped by person (sal-mtmc\'s global id) in `groups`.'
    )


class AttentionIn(Strict):
    """`POST /v1/attention`: the image whose attention maps are drawn."""

    image_b64: StrictStr


class HealthOut(BaseModel):
    status: str
    count: int
    store: str
    model: str


class AddOut(BaseModel):
    ids: list[str] = Field(description="The items' ids, in request order.")
    count: int = Field(description="Items in the gallery after the add.")


class DeleteOut(BaseModel):
    deleted: str
    count: int


class AppearanceOut(BaseModel):
    """One item of a person's journey: `sal_tf.gallery.Item`'s fields (sal-mtmc: one tracklet)."""

    id: str = Field(description='sal-mtmc: "<run>/<camera>/<track>".')
    camera: int | None
    timestamp: float | None = Field(description="sal-mtmc: unix seconds of the tracklet's first frame.")
    path: str | None = Field(
        description="sal-mtmc: its best crop (served by /v1/gallery/{id}/image with --paths_root)."
    )
    person_id: int | None


class HitOut(BaseModel):
    """One hit: `sal_tf.gallery.Hit.to_json()` and the probability that it is the query's person."""

    id: str
    distance: float
    camera: int | None
    timestamp: float | None
    path: str | None
    person_id: int | None
    same_person: float | None = Field(
        description="P(same person) of the distance from the model's calibration (even prior); null without one."
    )


class GroupOut(BaseModel):
    """The hits of one person (`person_id`), with the nearest one's distance and same_person."""

    person_id: int
    distance: float
    same_person: float | None
    hits: list[HitOut] = Field(description="Nearest first.")


class SearchOut(BaseModel):
    results: list[HitOut] = Field(description="Nearest first.")
    groups: list[GroupOut] | None = Field(
        description='With "group_by": "person_id": the hits of `results` by person, nearest person first '
        "(hits without a person_id only in `results`); else null."
    )
    took_ms: float = Field(description="The server's own time for the search (no HTTP, no queueing before it).")


class JourneyOut(BaseModel):
    """`GET /v1/journeys/{global_id}`: a person's appearances across cameras, in time order."""

    global_id: int
    appearances: list[AppearanceOut] = Field(description="By timestamp (unknown last), then id.")


class ErrorOut(BaseModel):
    """Every refusal: what was expected and what came, and the field it names (a path such as items[2].camera)."""

    error: str
    field: str | None = None
