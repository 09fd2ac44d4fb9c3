"""The API's routers, one module per concern; ``api.app.create_app`` mounts them."""

from api.models import Problem

# error answers every /v1 route may give (documented so clients and fuzzers know them)
COMMON_ERRORS: dict[int | str, dict] = {
    400: {"model": Problem, "description": "Malformed request (e.g. broken multipart data)"},
    401: {"model": Problem, "description": "API key missing (when SOURCING_API_KEYS is set)"},
    403: {"model": Problem, "description": "API key not valid"},
    413: {"model": Problem, "description": "Request body over the size limit (answered as "
                                           "text/plain naming the limit in bytes, from the "
                                           "declared length, before the body is read)",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    422: {"model": Problem, "description": "Invalid input; `detail` says which and why"},
    429: {"model": Problem, "description": "Rate limit exceeded; see the Retry-After header"},
    503: {"model": Problem, "description": "Catalog, index and models still loading"},
}
NOT_FOUND: dict[int | str, dict] = {404: {"model": Problem, "description": "No such record"}}
UPLOAD_ERRORS: dict[int | str, dict] = {
    413: {"model": Problem, "description": "Body, file or pixel count over the limit "
                                           "(decompression bombs are refused from the header)",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    415: {"model": Problem, "description": "Not an image in an allowed format (checked by "
                                           "content, not by name)"},
}
