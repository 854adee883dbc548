"""The recorded wire output of real AgentCore agents (tests/fixtures/agentcore/, recorded by
scripts/record-agentcore-goldens): what each entrypoint shape puts on the wire, stated as
tests, and a check that the pinned agents still produce it."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "agentcore_agents"))

from goldens import FIXTURES, PROMPT, events, record, signature  # noqa: E402
from scripted_model import ANSWER_TEMPLATE, TOOL_ANSWER_TEMPLATE, USAGE  # noqa: E402

from agentcore_fixtures import SHAPES  # noqa: E402

ANSWER = ANSWER_TEMPLATE.format(prompt=PROMPT)
TOOL_ANSWER = TOOL_ANSWER_TEMPLATE.format(result="sunny and 21 degrees in Berlin")


def golden(shape):
    meta = json.loads((FIXTURES / f"{shape}.meta.json").read_text())
    return meta, (FIXTURES / f"{shape}.body").read_bytes()


def deltas(evs):
    return "".join(
        e["event"]["contentBlockDelta"]["delta"].get("text", "")
        for e in evs
        if isinstance(e, dict) and "contentBlockDelta" in e.get("event", {})
    )


def usages(evs):
    return [e["event"]["metadata"]["usage"] for e in evs if isinstance(e, dict) and "metadata" in e.get("event", {})]


def test_raw_events_carry_the_text_once_as_deltas_and_again_in_repr_strings_and_the_final_message():
    meta, body = golden("raw_events")
    assert (meta["status"], meta["content_type"]) == (200, "text/event-stream; charset=utf-8")
    evs = events(body)
    assert deltas(evs) == ANSWER
    reprs = [e for e in evs if isinstance(e, str)]
    # Strands' non-JSON events fall back to Python repr strings: one per delta, one for the result.
    assert sum(r.startswith("{'data': ") for r in reprs) == len(ANSWER.split(" "))
    assert sum(r.startswith("{'result': AgentResult(") for r in reprs) == 1
    assert all(isinstance(e, (dict, str)) for e in evs)
    messages = [e["message"] for e in evs if isinstance(e, dict) and "message" in e]
    assert [m["content"][0]["text"] for m in messages] == [ANSWER]
    assert usages(evs) == [USAGE[0]]
    stops = [e["event"]["messageStop"]["stopReason"] for e in evs if isinstance(e, dict) and "messageStop" in e.get("event", {})]
    assert stops == ["end_turn"]


def test_tool_shape_reports_usage_per_model_call_and_tool_events():
    _, body = golden("tool")
    evs = events(body)
    assert deltas(evs) == TOOL_ANSWER
    assert usages(evs) == USAGE[:2]
    stops = [e["event"]["messageStop"]["stopReason"] for e in evs if isinstance(e, dict) and "messageStop" in e.get("event", {})]
    assert stops == ["tool_use", "end_turn"]
    tool_use = [e for e in evs if isinstance(e, dict) and "toolUse" in e.get("event", {}).get("contentBlockStart", {}).get("start", {})]
    assert tool_use[0]["event"]["contentBlockStart"]["start"]["toolUse"]["name"] == "get_weather"
    roles = [e["message"]["role"] for e in evs if isinstance(e, dict) and "message" in e]
    assert roles == ["assistant", "user", "assistant"]


def test_text_shape_is_one_json_string_per_delta():
    meta, body = golden("text")
    assert meta["content_type"].startswith("text/event-stream")
    evs = events(body)
    assert all(isinstance(e, str) for e in evs)
    assert "".join(evs) == ANSWER


def test_result_json_is_the_strands_message_under_result():
    meta, body = golden("result_json")
    assert (meta["status"], meta["content_type"]) == (200, "application/json")
    v = json.loads(body)
    assert v["result"]["content"] == [{"text": ANSWER}]
    assert v["result"]["metadata"]["usage"] == USAGE[0]


def test_result_text_is_a_json_string_with_the_newline_str_of_agentresult_adds():
    meta, body = golden("result_text")
    assert meta["content_type"] == "application/json"
    assert json.loads(body) == ANSWER + "\n"


def test_raise_midstream_sends_the_text_so_far_then_an_error_event_with_status_200():
    meta, body = golden("raise_midstream")
    assert meta["status"] == 200
    evs = events(body)
    assert evs[:2] == ["Hello", " from"]
    assert evs[2] == {"error": "scripted failure after two chunks", "error_type": "RuntimeError", "message": "An error occurred during streaming"}
    assert len(evs) == 3


@pytest.mark.parametrize("shape", SHAPES)
def test_the_pinned_agents_still_produce_the_recorded_shape(shape):
    meta, body = golden(shape)
    live_meta, live_body = record(shape)
    assert (live_meta["status"], live_meta["content_type"]) == (meta["status"], meta["content_type"])
    assert signature(live_meta["content_type"], live_body) == signature(meta["content_type"], body)
