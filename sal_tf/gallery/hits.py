"""`Hit`: one search result and its one JSON form, shared by the stores, the index folders, the
search command (`sal-search query`) and the service (`sal-serve`'s `POST /v1/search`).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Hit:
    """One search result: the item's id and metadata, and its distance to the query.

    Attributes:
        id: the item's id (a store's id; an index folder's item path).
        distance: to the query, in the store's / index's convention (`sal_tf.evaluation.distance`).
        camera: as a person numbers it (`c1` → 1), or None.
        timestamp: seconds, or None.
        path: the source path (metadata), or None.
        person_id: a known identity, or None.
    """

    id: str
    distance: float
    camera: int = None
    timestamp: float = None
    path: str = None
    person_id: int = None

    @classmethod
    def of(cls, item, distance):
        """The hit of a gallery `Item` at `distance`."""
        return cls(item.id, float(distance), item.camera, item.timestamp, item.path, item.person_id)

    def to_json(self):
        """{"id", "distance", "camera", "timestamp", "path", "person_id"}: the API's form of a hit."""
        return {
            "id": self.id,
            "distance": self.distance,
            "camera": self.camera,
            "timestamp": self.timestamp,
            "path": self.path,
            "person_id": self.person_id,
        }
