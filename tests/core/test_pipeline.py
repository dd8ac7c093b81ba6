"""The pipeline runs one input, a batch and a trace the same way."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import shipway
from shipway.errors import InputError, OutputError, PredictError


class In(BaseModel):
    text: str


class Out(BaseModel):
    label: str
    length: int


def normalise(item: In) -> In:
    return In(text=" ".join(item.text.split()).lower())


def predict(item: In) -> Out:
    return Out(label=item.text, length=len(item.text))


def predict_batch(items: list[In]) -> list[Out]:
    return [Out(label=i.text, length=len(i.text)) for i in items]


def shout(out: Out, request: In) -> Out:
    # an after-stage that also reads the request
    return Out(label=out.label.upper(), length=len(request.text))


@pytest.fixture
def pipeline() -> shipway.Pipeline:
    return shipway.Service(predict, predict_batch=predict_batch, before=[normalise], after=[shout]).setup()


def test_stage_order_and_names(pipeline: shipway.Pipeline) -> None:
    assert pipeline.stage_names == ["input", "normalise", "predict", "shout", "output"]


def test_one_input_from_dict_json_and_instance(pipeline: shipway.Pipeline) -> None:
    expected = Out(label="HELLO WORLD", length=11)
    # `shout` sees the request as it arrived, before normalise changed it
    assert pipeline.run({"text": "  Hello   World "}) == Out(label="HELLO WORLD", length=16)
    assert pipeline.run(b'{"text": "hello world"}') == expected
    assert pipeline.run(In(text="hello world")) == expected


def test_batch_matches_single(pipeline: shipway.Pipeline) -> None:
    texts = ["a  b", "C", "dd ee ff"]
    assert pipeline.run_batch([{"text": t} for t in texts]) == [pipeline.run({"text": t}) for t in texts]


def test_trace_records_every_stage(pipeline: shipway.Pipeline) -> None:
    trace = pipeline.trace({"text": "  Hi  There"})
    assert [s.name for s in trace.stages] == pipeline.stage_names
    assert trace.stage("normalise").input == In(text="  Hi  There")
    assert trace.stage("normalise").output == In(text="hi there")
    assert trace.stage("output").output == {"label": "HI THERE", "length": 11}  # len("  Hi  There")
    assert [s.error for s in trace.stages] == [None] * len(trace.stages)
    as_dict = trace.to_dict()
    assert [s["stage"] for s in as_dict["stages"]] == pipeline.stage_names


def test_trace_stops_at_the_failing_stage() -> None:
    def broken(item: In) -> In:
        raise ValueError("lost the text")

    pipeline = shipway.Service(predict, before=[broken]).setup()
    trace = pipeline.trace({"text": "x"})
    assert [s.name for s in trace.stages] == ["input", "broken"]
    assert trace.stages[-1].error == "ValueError: lost the text"


def test_input_errors_name_the_field(pipeline: shipway.Pipeline) -> None:
    with pytest.raises(InputError) as info:
        pipeline.run({"txt": "hello"})
    assert "text" in str(info.value) and "Field required" in str(info.value)
    assert info.value.details[0]["loc"] == ["text"]


def test_a_failing_item_does_not_fail_its_batch() -> None:
    def fragile(items: list[In]) -> list[Out]:
        if any(i.text == "bad" for i in items):
            raise RuntimeError("bad input")
        return [Out(label=i.text, length=1) for i in items]

    pipeline = shipway.Service(predict_batch=fragile).setup()
    results = pipeline.run_batch([{"text": "a"}, {"text": "bad"}, {"text": "c"}], errors="return")
    assert results[0] == Out(label="a", length=1)
    assert isinstance(results[1], PredictError) and results[1].stage == "predict"
    assert results[2] == Out(label="c", length=1)
    with pytest.raises(PredictError, match="bad input"):
        pipeline.run_batch([{"text": "bad"}])


def test_wrong_output_type_is_an_output_error() -> None:
    def lies(item: In) -> Out:
        return {"label": 3}  # type: ignore[return-value]

    with pytest.raises(OutputError, match="output schema Out"):
        shipway.Service(lies).setup().run({"text": "x"})


def test_batch_form_must_keep_length() -> None:
    def drops(items: list[In]) -> list[Out]:
        return [Out(label="x", length=1)]

    with pytest.raises(OutputError, match="returned 1 results for 2 inputs"):
        shipway.Service(predict_batch=drops).setup().run_batch([{"text": "a"}, {"text": "b"}])


def test_untyped_predict_passes_json_through() -> None:
    pipeline = shipway.Service(lambda item: {"echo": item}).setup()
    assert pipeline.run({"a": [1, 2]}) == {"echo": {"a": [1, 2]}}
