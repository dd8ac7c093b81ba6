"""Bare Starlette on uvicorn: the JSON echo baseline the issue names."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def predict(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
