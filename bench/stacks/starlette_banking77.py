"""Baseline: the banking77 model called once per request in a bare Starlette app."""

import os
from pathlib import Path

import numpy as np
import skops.io
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MODEL = skops.io.load(Path(os.environ["BANKING77_ARTIFACTS"]) / "model.skops")


async def predict(request: Request) -> JSONResponse:
    body = await request.json()
    proba = MODEL.predict_proba([body["text"]])[0]
    top = np.argsort(-proba)[:4]
    names = MODEL.classes_[top].tolist()
    return JSONResponse({
        "intent": names[0],
        "probability": float(proba[top[0]]),
        "alternatives": [{"intent": n, "probability": float(proba[i])} for n, i in zip(names[1:], top[1:])],
    })


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
