"""`BodyLimit`: ASGI middleware that caps a request body at `--max_upload_mb` (413, never read past the cap).

A declared `Content-Length` over the cap is answered at once; a body sent without one (chunked) is
counted as it arrives and refused when it passes the cap, so no request holds more than the cap
in memory.
"""

from fastapi.responses import JSONResponse

from sal_tf.serve.errors import BodyTooLarge


class BodyLimit:
    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, int(max_bytes)

    def too_large(self, received):
        mib = self.max_bytes / 1024 / 1024
        return BodyTooLarge(f"body: expected at most {mib:g} MiB (--max_upload_mb); received {received}", "body")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = self.too_large(f"{int(declared)} bytes")
            return await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large(f"more than {self.max_bytes} bytes")
            return message

        return await self.app(scope, limited_receive, send)
