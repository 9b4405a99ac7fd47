"""
One client across event loops (`journey_async._http._pool.pool_for`): a
client used in one ``asyncio.run`` and then another (or by pytest-asyncio's
function-scoped loops, from a module-level client) works in each with fresh
connections, and leaves no socket open, the loops' idle connections closed
when each loop shuts down, or directly once a loop closed without shutting
down its async generators. A loop in another thread still running refuses,
with a clear error, rather than share connections and slots across threads.

The warnings are checked in a subprocess run with ``-X dev -W
error::ResourceWarning``, since an unclosed socket only shows when it is
collected: at exit, where a test cannot catch it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

import journey_async as ja
from journey_async._http._pool import OTHER_LOOP_MESSAGE
from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator's default

# Three loops one after the other with one client: argv is the base URL, the
# loop ("asyncio" or "uvloop") and how each loop ends ("run": asyncio.run's
# way, async generators shut down, and the client never closed; "bare":
# loop.close() alone, and the client closed at the end from a fourth loop).
_THREE_LOOPS = """
import asyncio, gc, sys
import journey_async as ja

url, kind, ending = sys.argv[1:]
if kind == "uvloop":
    import uvloop
    new_loop = uvloop.new_event_loop
else:
    new_loop = asyncio.new_event_loop
client = ja.AsyncJourneyClient("test-token", base_url=url, max_concurrency=4, retry=None)
ids = [f"journey-{n}" for n in range(12)]

async def use() -> int:
    results = await client.get_stats_many(ids)
    return sum(result.ok for result in results)

for _ in range(3):
    if ending == "run":
        with asyncio.Runner(loop_factory=new_loop) as runner:
            print(runner.run(use()))
    else:
        loop = new_loop()
        print(loop.run_until_complete(use()))
        loop.close()
if ending == "bare":
    # Nothing closed the last loop's connections: aclose does, in a loop of its own.
    asyncio.run(client.aclose())
del client
gc.collect()
"""


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    emulator = JourneyEmulator()
    for n in range(12):
        emulator.add_journey(f"journey-{n}", title=f"J{n}", points=[])
    with serve_emulator(emulator) as server:
        yield server


def _loops() -> list[str]:
    return ["asyncio"] if sys.platform == "win32" else ["asyncio", "uvloop"]


@pytest.mark.parametrize("kind", _loops())
@pytest.mark.parametrize("ending", ["run", "bare"])
def test_one_client_across_three_loops_leaves_no_socket_open(
    served: EmulatorServer, kind: str, ending: str
) -> None:
    if kind == "uvloop" and ending == "bare":
        # uvloop closes (and warns about) every handle of a loop closed
        # without a shutdown, before anything of ours can run.
        pytest.skip("uvloop's own warning at a bare loop.close()")
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            _THREE_LOOPS,
            served.url,
            kind,
            ending,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "12", "12"]
    assert "ResourceWarning" not in done.stderr, done.stderr
    assert "unclosed" not in done.stderr, done.stderr


def _factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if sys.platform != "win32":
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.mark.parametrize("kind", list(_factories()))
def test_the_next_loop_never_reuses_the_last_ones_connections(
    served: EmulatorServer, kind: str
) -> None:
    # As pytest-asyncio's function-scoped loops see a module-level client.
    new_loop = _factories()[kind]
    client = ja.AsyncJourneyClient(TOKEN, base_url=served.url, max_concurrency=4, retry=None)
    transport = client._shared.http._transport
    ids = [f"journey-{n}" for n in range(8)]
    seen: list[object] = []

    async def use() -> list[ja.StatsResult]:
        results = await client.get_stats_many(ids)
        pool = transport._pool  # type: ignore[attr-defined]
        seen.append(pool)
        idle = [connection for connections in pool.idle.values() for connection in connections]
        assert idle, "kept alive for the next request"
        seen.extend(idle)
        return results

    with asyncio.Runner(loop_factory=new_loop) as runner:
        first = runner.run(use())
        first_idle = seen[1:]
    # Closed as the loop shut down, while it could still run the close.
    assert all(connection.closed for connection in first_idle)  # type: ignore[attr-defined]
    assert all(
        connection.transport.is_closing()  # type: ignore[attr-defined]
        for connection in first_idle
    )
    with asyncio.Runner(loop_factory=new_loop) as runner:
        second = runner.run(use())
        assert seen[len(first_idle) + 1] is not seen[0], "a new pool for the new loop"
        assert not set(map(id, seen[len(first_idle) + 2 :])) & set(map(id, first_idle))
        runner.run(client.aclose())
    assert all(result.ok for result in [*first, *second])


def test_a_loop_of_another_thread_still_running_is_refused(served: EmulatorServer) -> None:
    client = ja.AsyncJourneyClient(TOKEN, base_url=served.url, max_concurrency=4, retry=None)
    in_flight = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        await client.get_stats("journey-0")  # the pool is this loop's now
        in_flight.set()
        while not release.is_set():  # noqa: ASYNC110 - the other thread's flag
            await asyncio.sleep(0.005)
        await client.aclose()

    other = threading.Thread(target=asyncio.run, args=(hold(),))
    other.start()
    try:
        assert in_flight.wait(10)

        async def use() -> None:
            with pytest.raises(RuntimeError, match="running in another thread"):
                await client.get_stats("journey-1")

        asyncio.run(use())
    finally:
        release.set()
        other.join(10)
    assert not other.is_alive()
    assert "create one client per event loop" in OTHER_LOOP_MESSAGE
