"""Many callers at once (asyncio tasks and threads) on the one shared runtime; the GIL is
released while a call waits; abandoning a stream or pressing Ctrl-C closes the upstream call."""
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

import agentbridge
from agentbridge import acompletion, completion
from conftest import MODEL, user


def test_acompletion_answers(emu):
    r = asyncio.run(acompletion(model=MODEL, messages=user("async hello")))
    assert isinstance(r, agentbridge.ModelResponse)
    assert r.choices[0].message.content.endswith("received: async hello") and r.response_cost > 0


def test_acompletion_streams_with_async_for(emu):
    async def main():
        stream = await acompletion(model=MODEL, messages=user("emulate:big=2000 x"), stream=True)
        assert isinstance(stream, agentbridge.AsyncStream)
        return [c async for c in stream]

    chunks = asyncio.run(main())
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_64_concurrent_acompletions_each_get_their_own_answer(emu):
    async def main():
        return await asyncio.gather(*(acompletion(model=MODEL, messages=user(f"question {i}"))
                                      for i in range(64)))

    answers = asyncio.run(main())
    assert [a.choices[0].message.content.rsplit(": ", 1)[1] for a in answers] == [f"question {i}" for i in range(64)]
    assert len({a.session_id for a in answers}) == 64


def test_acompletion_errors_raise_at_await(emu):
    async def main():
        await acompletion(model=MODEL, messages=user("x emulate:exception=throttlingException"), num_retries=0)

    with pytest.raises(agentbridge.RateLimitError):
        asyncio.run(main())


def test_threads_call_at_once(emu):
    answers, errors = {}, []

    def call(i):
        try:
            if i % 2:
                answers[i] = completion(model=MODEL, messages=user(f"thread {i}")).choices[0].message.content
            else:
                stream = completion(model=MODEL, messages=user(f"thread {i}"), stream=True)
                answers[i] = "".join(c.choices[0].delta.content or "" for c in stream)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(answers[i].endswith(f"received: thread {i}") for i in range(32))


def test_the_gil_is_released_while_a_call_waits(emu):
    """A slow call in one thread does not stop another thread from completing a call."""
    slow = threading.Thread(target=completion, kwargs={"model": MODEL, "messages": user("x emulate:slow=1500")})
    slow.start()
    r = completion(model=MODEL, messages=user("quick"))
    assert slow.is_alive(), "the quick call waited for the slow one"
    assert r.choices[0].message.content.endswith("quick")
    slow.join(30)


def test_breaking_out_of_a_stream_closes_the_upstream_call(emu, cancelled):
    for chunk in completion(model=MODEL, messages=user("x emulate:stall"), stream=True):
        assert chunk.choices[0].delta.content
        break
    assert cancelled()


def test_closing_a_stream_closes_the_upstream_call(emu, cancelled):
    stream = completion(model=MODEL, messages=user("x emulate:stall"), stream=True)
    next(stream)
    stream.close()
    assert cancelled()
    assert list(stream) == []


def test_leaving_a_with_block_closes_the_stream(emu, cancelled):
    with completion(model=MODEL, messages=user("x emulate:stall"), stream=True) as stream:
        assert next(stream).choices[0].delta.content
    assert cancelled()


def test_leaving_an_async_with_block_closes_the_stream(emu, cancelled):
    async def main():
        async with await acompletion(model=MODEL, messages=user("x emulate:stall"), stream=True) as stream:
            assert (await stream.__anext__()).choices[0].delta.content
        return [c async for c in stream]

    assert asyncio.run(main()) == []
    assert cancelled()


def test_abandoning_an_async_stream_closes_the_upstream_call(emu, cancelled):
    async def main():
        async for chunk in await acompletion(model=MODEL, messages=user("x emulate:stall"), stream=True):
            assert chunk.choices[0].delta.content
            break

    asyncio.run(main())
    assert cancelled()


def test_cancelling_an_asyncio_task_closes_the_upstream_call(emu, recorded, cancelled):
    async def main():
        task = asyncio.ensure_future(acompletion(model=MODEL, messages=user("x emulate:stall")))
        while not recorded():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cancelled()


# The child asks for Python's KeyboardInterrupt handler itself: Python installs it only when
# SIGINT is not ignored at start, and a suite started as a background job of a
# non-interactive shell (`.ci/run &`) runs with SIGINT ignored, which children inherit.
CTRL_C = """
import signal, sys, agentbridge
signal.signal(signal.SIGINT, signal.default_int_handler)
print("calling", flush=True)
try:
    agentbridge.completion(model=sys.argv[1], messages=[{"role": "user", "content": "x emulate:stall"}])
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


def test_ctrl_c_during_a_call_raises_keyboard_interrupt_and_closes_it(emu, aws_env, recorded, cancelled):
    p = subprocess.Popen([sys.executable, "-c", CTRL_C, MODEL], env=dict(os.environ, **aws_env),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not recorded() and time.time() < deadline:
        time.sleep(0.02)
    assert recorded(), "the call did not reach the agent"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert out.splitlines() == ["calling", "KeyboardInterrupt"], err
    assert cancelled()
