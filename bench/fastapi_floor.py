"""FastAPI's own floor for ``make bench``'s API measure: a bare FastAPI app (none of the project's
middleware, dependencies or response models) whose one endpoint takes the image route's form
(the photo, ``k``, ``filter``) and does what the bare Starlette upload endpoint does: reads the
photo and answers its size. Its ratio against that Starlette endpoint is what FastAPI itself
costs a multipart route; the project's route against it, what the project adds.

A module of its own, imported only by the bench: FastAPI reads the endpoint's annotations, which
must be importable names (not postponed ones naming function-local imports)."""

from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile


def fastapi_floor_app() -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload(image: Annotated[UploadFile, File()],
                     k: Annotated[int, Form(ge=1, le=100)] = 10,
                     filter: Annotated[str | None, Form()] = None) -> dict[str, int]:
        data = await image.read()
        return {"bytes": len(data)}

    return app
