"""Bare Sanic JSON echo, the framework the modelled team used."""

from sanic import Sanic
from sanic.response import json

app = Sanic("echo")


@app.post("/predict")
async def predict(request):
    return json(request.json)
