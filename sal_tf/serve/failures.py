"""The service's refusals, free of HTTP: what went wrong and which field of the request it was.

`sal_tf.serve.service.GalleryService` and the modules under it (`images`, `embedding`) raise
these; `sal_tf/serve/errors.py` is the one place that maps each class to an HTTP status.
"""


class ServiceError(Exception):
    """A refusal: `message` for the user, `field` the part of the request it names (or None)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message, self.field = message, field

    def body(self):
        """The documented error form: {"error": message, "field": field} (no field when None)."""
        return {"error": self.message, **({"field": self.field} if self.field else {})}


class BadInput(ServiceError):
    """A wrong value: `field` names it, the message says what was expected and what came."""

    def __init__(self, field, expected, received=None):
        got = "" if received is None else f"; received {received}"
        super().__init__(f"{field}: expected {expected}{got}", field)


class NotFound(ServiceError):
    """No gallery item with the id asked for."""


class NotSupported(ServiceError):
    """The model cannot do it (attention maps of a SavedModel or of TF Serving)."""


class UpstreamError(ServiceError):
    """TF Serving answered with an error or could not be reached."""


class InvalidValue(ServiceError):
    """A value the gallery store refused: its own message, naming `field`."""
