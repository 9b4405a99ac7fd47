"""
Happy eyeballs (`journey_async._http._eyeballs`) and `connect` to a name with
several addresses, against real sockets on 127.0.0.1 and, where the machine
has IPv6 loopback, ::1: the order of the attempts, the delay, the errors, TLS
on the winner, and no socket left open when cancelled at any point, down to
a fan-out of `get_stats_many`. The resolution is injected (the loop's
``getaddrinfo`` patched) so that one name yields several addresses, and a
black hole is a patched ``create_connection`` that never answers: no
network beyond loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

import httpx
import pytest
import trustme

import journey_async as ja
from journey_async._http import CertificateVerifyFailed, _connection
from journey_async._http._connection import Connection, _tcp_to, connect
from journey_async._http._eyeballs import AddrInfo, AllAttemptsFailed, connect_first, interleave
from journey_async.testing import JourneyEmulator, serve_emulator

NAME = "eyeballs.test"
"""The name the tests resolve themselves."""


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not IPV6, reason="no IPv6 loopback (::1) on this machine")


def info(host: str, port: int) -> AddrInfo:
    """*host*:*port* as `getaddrinfo` gives it for TCP."""
    if ":" in host:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


@contextlib.contextmanager
def refusing(host: str = "127.0.0.1") -> Iterator[int]:
    """A port of *host* that refuses connections: bound (so that nothing
    else takes it) and never listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def listening(host: str = "127.0.0.1") -> Iterator[int]:
    """A port of *host* whose connections the kernel completes: listening,
    never accepting, so that the test's process holds no server side."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        sock.listen(512)
        yield int(sock.getsockname()[1])


def resolving(monkeypatch: pytest.MonkeyPatch, infos: Sequence[AddrInfo], name: str = NAME) -> None:
    """*name* resolves to *infos* on the running loop; other names as ever."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[Any]:
        if host == name:
            return list(infos)
        return await real(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


Connect = Callable[..., Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]]


def patch_connect(
    monkeypatch: pytest.MonkeyPatch,
    around: Callable[[Connect, Any, Any, Any], Awaitable[Any]],
) -> None:
    """The running loop's ``create_connection`` through *around* (given
    the real one, the factory, host and port) when called with a host."""
    loop = asyncio.get_running_loop()
    real = loop.create_connection

    async def create_connection(factory: Any, host: Any = None, port: Any = None, **kw: Any) -> Any:
        if host is None:
            return await real(factory, host, port, **kw)
        return await around(functools.partial(real, **kw), factory, host, port)

    monkeypatch.setattr(loop, "create_connection", create_connection)


class BlackHole:
    """The running loop's ``create_connection`` never answering for
    *addresses* (until cancelled); every other address connects for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *addresses: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self.started: dict[tuple[str, int], float] = {}
        self.cancelled = 0

        async def around(real: Connect, factory: Any, host: Any, port: Any) -> Any:
            self.started[host, port] = loop.time()
            if (host, port) not in addresses:
                return await real(factory, host, port)
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise

        patch_connect(monkeypatch, around)


HAS_PROC_FD = os.path.isdir("/proc/self/fd")


def open_sockets() -> set[int]:
    """This process's file descriptors that are sockets."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own, closed since
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
    return found


def is_left(fd: int, server_ports: Sequence[int]) -> bool:
    """Whether socket *fd* is still open and not a server's."""
    try:
        duplicate = os.dup(fd)
    except OSError:  # closed since (by a server's thread)
        return False
    with socket.socket(fileno=duplicate) as sock:
        return sock.getsockname()[1] not in server_ports


@contextlib.asynccontextmanager
async def no_socket_left(*server_ports: int) -> AsyncIterator[None]:
    """
    The block leaves no socket open but the servers' (those of
    *server_ports*), and none was dropped unclosed. No `gc.collect` needed:
    a socket left in a reference cycle is still open, so counted.
    """
    if not HAS_PROC_FD:
        pytest.skip("counts sockets in /proc/self/fd")
    before = open_sockets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        for _ in range(5):  # a transport closed now lets its socket go at the next turn
            await asyncio.sleep(0)
        left = {fd for fd in open_sockets() - before if is_left(fd, server_ports)}
    assert not left, f"{len(left)} sockets left open"
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, f"{len(unclosed)} sockets collected unclosed: {unclosed[0].message}"


def peer_port(connection: Connection) -> int:
    assert connection.transport is not None
    return int(connection.transport.get_extra_info("peername")[1])


async def race(infos: Sequence[AddrInfo], delay: float) -> Connection:
    """`connect_first` as `connect` calls it: a TCP connection per attempt."""
    loop = asyncio.get_running_loop()
    return await connect_first(loop, infos, delay, _tcp_to(loop), Connection.close)


async def connect_to(port: int, tls: ssl.SSLContext | None = None) -> Connection:
    """`connect` to `NAME`:*port*, as the transport calls it."""
    scheme = "https" if tls else "http"
    request = httpx.Request("GET", f"{scheme}://{NAME}:{port}/")
    loop = asyncio.get_running_loop()
    return await connect(loop, NAME, port, tls=tls, connect_timeout=5.0, request=request)


# --- the order of the attempts ------------------------------------------------------------


def test_the_families_take_turns_from_the_first_and_repeats_are_dropped() -> None:
    six = [info(f"::{n}", 80) for n in (1, 2, 3)]
    four = [info(f"127.0.0.{n}", 80) for n in (1, 2)]
    assert interleave([six[0], six[1], six[2], four[0], four[1], six[0]]) == [
        six[0],
        four[0],
        six[1],
        four[1],
        six[2],
    ]
    assert interleave([four[0], six[0], six[1]]) == [four[0], six[0], six[1]]
    assert interleave([]) == []


async def test_the_first_address_refusing_the_next_starts_at_once_and_wins() -> None:
    with refusing() as closed, listening() as port:
        async with no_socket_left(), asyncio.timeout(5):
            # A delay far longer than the timeout: only the refusal can start the second.
            connection = await race([info("127.0.0.1", closed), info("127.0.0.1", port)], 60)
            assert peer_port(connection) == port
            connection.close()


async def test_a_first_address_that_never_answers_gives_way_after_the_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    with listening() as hole, listening() as port:
        black_hole = BlackHole(monkeypatch, ("127.0.0.1", hole))
        first, second = info("127.0.0.1", hole), info("127.0.0.1", port)
        async with no_socket_left(), asyncio.timeout(5):
            called = loop.time()
            connection = await race([first, second], 0.1)
            assert peer_port(connection) == port
            assert black_hole.cancelled == 1, "stopped before the race returned"
            connection.close()
    # Timers never fire early (beyond the clock's resolution: uvloop's is a
    # millisecond), however busy the machine.
    assert black_hole.started["127.0.0.1", port] - called >= 0.1 - 0.005, "not before the delay"


async def test_an_attempt_still_running_when_the_next_starts_may_still_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    with listening() as slow, listening() as hole:
        go = asyncio.Event()

        async def around(real: Connect, factory: Any, host: Any, port: Any) -> Any:
            if port == slow:
                await go.wait()  # the second attempt has started meanwhile
                return await real(factory, host, port)
            go.set()
            await loop.create_future()  # never answers
            return None

        patch_connect(monkeypatch, around)
        async with no_socket_left(), asyncio.timeout(5):
            connection = await race([info("127.0.0.1", slow), info("127.0.0.1", hole)], 0)
            assert peer_port(connection) == slow
            connection.close()
    assert go.is_set()


async def test_the_next_attempt_waits_for_the_delay_unless_the_latest_one_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As asyncio's race: the first failing while the second is under way
    # does not start the third before the second's delay is up.
    loop = asyncio.get_running_loop()
    second_started = asyncio.Event()
    with listening() as one, listening() as two, listening() as three:
        black_hole = BlackHole(monkeypatch, ("127.0.0.1", two))
        hanging = loop.create_connection

        async def create_connection(factory: Any, host: Any = None, port: Any = None) -> Any:
            if port == one:
                await second_started.wait()
                raise ConnectionRefusedError(111, "refused, once the second has started")
            if port == two:
                second_started.set()
            return await hanging(factory, host, port)

        monkeypatch.setattr(loop, "create_connection", create_connection)
        infos = [info("127.0.0.1", port) for port in (one, two, three)]
        async with no_socket_left(), asyncio.timeout(5):
            connection = await race(infos, 0.1)
            assert peer_port(connection) == three
            connection.close()
    started = black_hole.started
    # Timers never fire early (beyond uvloop's millisecond), however busy the machine.
    assert started["127.0.0.1", three] - started["127.0.0.1", two] >= 0.1 - 0.005


async def test_with_every_attempt_started_the_race_waits_without_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits = 0
    real_wait = asyncio.wait

    async def wait(*args: Any, **kwargs: Any) -> Any:
        nonlocal waits
        waits += 1
        return await real_wait(*args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", wait)
    with listening() as one, listening() as two:
        BlackHole(monkeypatch, ("127.0.0.1", one), ("127.0.0.1", two))
        racing = asyncio.ensure_future(race([info("127.0.0.1", one), info("127.0.0.1", two)], 0))
        async with no_socket_left():
            for _ in range(50):
                await asyncio.sleep(0)
            racing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await racing
    # One wait for each attempt started, one for the losers to stop: not one a turn.
    assert waits <= 3


def test_an_error_without_errno_is_named_by_its_message_or_its_class() -> None:
    failed = AllAttemptsFailed(
        [(info("127.0.0.1", 1), OSError("no route")), (info("::1", 1), ConnectionError())]
    )
    assert str(failed) == "all 2 addresses failed: 127.0.0.1: no route; [::1]: ConnectionError"


async def test_every_address_refusing_is_one_error_naming_each() -> None:
    with refusing() as one, refusing() as two, refusing() as three:
        infos = [info("127.0.0.1", port) for port in (one, two, three)]
        async with no_socket_left(), asyncio.timeout(5):
            with pytest.raises(AllAttemptsFailed) as caught:
                await race(infos, 0)
    assert str(caught.value) == (
        "all 3 addresses failed: 127.0.0.1: Connection refused; "
        "127.0.0.1: Connection refused; 127.0.0.1: Connection refused"
    )
    failures = caught.value.failures
    assert [address for address, _ in failures] == infos, "in the order they started"
    assert [type(error) for _, error in failures] == [ConnectionRefusedError] * 3


# --- connect() to a name with several addresses --------------------------------------------


@needs_ipv6
async def test_connect_to_a_name_whose_ipv6_address_refuses_goes_on_to_ipv4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with refusing("::1") as closed, listening() as port:
        resolving(monkeypatch, [info("::1", closed), info("127.0.0.1", port)])
        async with no_socket_left(), asyncio.timeout(5):
            connection = await connect_to(port)
            assert connection.transport is not None
            try:
                assert connection.transport.get_extra_info("peername")[1] == port
                made = connection.transport.get_extra_info("socket")
                # As asyncio's own connections: requests are not held back (Nagle).
                assert made.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            finally:
                connection.close()


@needs_ipv6
async def test_connect_when_every_address_refuses_is_a_connect_error_naming_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with refusing("::1") as six, refusing() as four:
        resolving(monkeypatch, [info("::1", six), info("127.0.0.1", four)])
        async with no_socket_left(), asyncio.timeout(5):
            with pytest.raises(httpx.ConnectError) as caught:
                await connect_to(four)
    assert str(caught.value) == (
        f"cannot connect to {NAME}:{four}: all 2 addresses failed: "
        "[::1]: Connection refused; 127.0.0.1: Connection refused"
    )
    assert caught.value.request.url.host == NAME


async def test_connect_when_no_address_answers_in_time_is_a_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_connection, "HAPPY_EYEBALLS_DELAY", 0.0)
    with listening() as one, listening() as two:
        black_hole = BlackHole(monkeypatch, ("127.0.0.1", one), ("127.0.0.1", two))
        resolving(monkeypatch, [info("127.0.0.1", one), info("127.0.0.1", two)])
        request = httpx.Request("GET", f"http://{NAME}:{one}/")
        loop = asyncio.get_running_loop()
        async with no_socket_left():
            with pytest.raises(httpx.ConnectTimeout, match=f"connecting to {NAME}:{one} took"):
                await connect(loop, NAME, one, tls=None, connect_timeout=0.5, request=request)
        assert black_hole.cancelled == 2, "both were trying"


async def test_an_ip_address_is_connected_to_without_the_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()

    async def no_resolver(*args: Any, **kwargs: Any) -> list[Any]:
        raise AssertionError("the resolver was asked")

    monkeypatch.setattr(loop, "getaddrinfo", no_resolver)
    hosts = ["127.0.0.1", "::1"] if IPV6 else ["127.0.0.1"]
    for host in hosts:
        with listening(host) as port:
            shown = f"[{host}]" if ":" in host else host
            request = httpx.Request("GET", f"http://{shown}:{port}/")
            async with no_socket_left(), asyncio.timeout(5):
                connection = await connect(
                    loop, host, port, tls=None, connect_timeout=5.0, request=request
                )
                connection.close()


async def test_a_name_with_one_address_is_connected_to_without_the_race(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_race(*args: Any) -> Connection:
        raise AssertionError("raced")

    monkeypatch.setattr(_connection, "connect_first", no_race)
    with listening() as port:
        resolving(monkeypatch, [info("127.0.0.1", port)] * 2)  # one address, twice
        async with no_socket_left(), asyncio.timeout(5):
            (await connect_to(port)).close()


# --- TLS, on the winner ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 with a certificate for `NAME`, that closes
    what it accepts once the handshake is done."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0, ssl=context)
    async with server:
        yield int(server.sockets[0].getsockname()[1])
        server.close()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_tls_over_the_race_checks_the_certificate_against_the_name(
    ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tls_server(ca) as port:
        with refusing() as closed:
            resolving(monkeypatch, [info("127.0.0.1", closed), info("127.0.0.1", port)])
            async with no_socket_left(port), asyncio.timeout(5):
                connection = await connect_to(port, tls=trusting(ca))
                assert connection.transport is not None
                try:
                    assert connection.transport.get_extra_info("ssl_object") is not None
                finally:
                    connection.close()
                # A CA not trusted: refused, naming the cause, its socket closed.
                with pytest.raises(CertificateVerifyFailed, match="certificate was refused"):
                    await connect_to(port, tls=trusting(trustme.CA()))


# --- cancelled at any point ------------------------------------------------------------------


Scenario = Callable[[pytest.MonkeyPatch, contextlib.ExitStack], Awaitable[int]]


async def _refused_then_accepted(
    monkeypatch: pytest.MonkeyPatch, stack: contextlib.ExitStack
) -> int:
    closed, port = stack.enter_context(refusing()), stack.enter_context(listening())
    resolving(monkeypatch, [info("127.0.0.1", closed), info("127.0.0.1", port)])
    return port


async def _both_accept(monkeypatch: pytest.MonkeyPatch, stack: contextlib.ExitStack) -> int:
    # With no delay both connect: the one that is late is closed.
    one, two = stack.enter_context(listening()), stack.enter_context(listening())
    resolving(monkeypatch, [info("127.0.0.1", one), info("127.0.0.1", two)])
    return one


async def _first_never_answers(monkeypatch: pytest.MonkeyPatch, stack: contextlib.ExitStack) -> int:
    hole, port = stack.enter_context(listening()), stack.enter_context(listening())
    BlackHole(monkeypatch, ("127.0.0.1", hole))
    resolving(monkeypatch, [info("127.0.0.1", hole), info("127.0.0.1", port)])
    return port


SCENARIOS: dict[str, Scenario] = {
    "refused-then-accepted": _refused_then_accepted,
    "both-accept": _both_accept,
    "first-never-answers": _first_never_answers,
}
TURNS = range(20)
"""Loop turns before the cancel: measured here, a connect over two
addresses takes 9 to 13 turns (TLS included) on both loops, so the sweep
cancels before, during and after each step of it."""


async def _cancel_after(turns: int, connecting: Callable[[], Awaitable[Connection]]) -> None:
    """Ten connects at once, cancelled after *turns* turns of the loop; the
    connections made before the cancel closed, as their caller would."""
    tasks = [asyncio.ensure_future(connecting()) for _ in range(10)]
    for _ in range(turns):
        await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Connection):
            outcome.close()
        elif not isinstance(outcome, asyncio.CancelledError):
            raise outcome


@pytest.mark.parametrize("turns", TURNS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_cancelled_after_any_number_of_turns_no_socket_is_left_open(
    scenario: str, turns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_connection, "HAPPY_EYEBALLS_DELAY", 0.0)
    with contextlib.ExitStack() as stack:
        port = await SCENARIOS[scenario](monkeypatch, stack)
        async with no_socket_left(), asyncio.timeout(5):
            await _cancel_after(turns, lambda: connect_to(port))


@pytest.mark.parametrize("turns", TURNS)
async def test_cancelled_after_any_number_of_turns_over_tls_no_socket_is_left_open(
    turns: int, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_connection, "HAPPY_EYEBALLS_DELAY", 0.0)
    context = trusting(ca)
    async with tls_server(ca) as port:
        with refusing() as closed:
            resolving(monkeypatch, [info("127.0.0.1", closed), info("127.0.0.1", port)])
            async with no_socket_left(port), asyncio.timeout(5):
                await _cancel_after(turns, lambda: connect_to(port, tls=context))


async def test_cancelled_the_moment_a_connect_succeeds_its_connection_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.11's own race (asyncio.staggered) drops its winner right here.
    racing: list[asyncio.Task[Connection]] = []
    won: list[Connection] = []

    async def around(real: Connect, factory: Any, host: Any, port: Any) -> Any:
        made = await real(factory, host, port)
        won.append(cast(Connection, made[1]))
        racing[0].cancel()  # connected, and the race has not seen it yet
        return made

    patch_connect(monkeypatch, around)
    with listening() as one, listening() as two:
        resolving(monkeypatch, [info("127.0.0.1", one), info("127.0.0.1", two)])
        async with no_socket_left(), asyncio.timeout(5):
            racing.append(asyncio.ensure_future(connect_to(one)))
            with pytest.raises(asyncio.CancelledError):
                await racing[0]
            assert [connection.closed for connection in won] == [True], "before the cancel surfaced"


async def test_cancelled_while_the_losers_stop_the_winner_is_closed_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    won: list[Connection] = []
    racing: list[asyncio.Task[Connection]] = []
    stopped = asyncio.Event()

    async def around(real: Connect, factory: Any, host: Any, port: Any) -> Any:
        if port == winning:
            made = await real(factory, host, port)
            won.append(cast(Connection, made[1]))
            return made
        try:
            await asyncio.get_running_loop().create_future()  # never answers
        except asyncio.CancelledError:
            # The race has won and waits for this loser to stop: cancelled now.
            racing[0].cancel()
            await asyncio.sleep(0)
            stopped.set()
            raise

    patch_connect(monkeypatch, around)
    with listening() as hole, listening() as winning:
        async with no_socket_left(), asyncio.timeout(5):
            racing.append(
                asyncio.ensure_future(
                    race([info("127.0.0.1", hole), info("127.0.0.1", winning)], 0)
                )
            )
            with pytest.raises(asyncio.CancelledError):
                await racing[0]
            assert [connection.closed for connection in won] == [True]
            assert stopped.is_set()


# --- a fan-out cancelled while its connections open -------------------------------------------


@pytest.fixture(scope="module")
def localhost_emulator() -> Iterator[tuple[JourneyEmulator, int]]:
    """The emulator served for real on 127.0.0.1, to be reached as ``localhost``."""
    with serve_emulator(JourneyEmulator.with_sample_data(200, seed=3)) as served:
        yield served.emulator, int(served.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def reserved_ipv6(port: int) -> Iterator[None]:
    """Nothing listens on ::1 at *port* for the block (skips if it is taken)."""
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", port))
        except OSError as exc:
            pytest.skip(f"[::1]:{port} is taken: {exc}")
        yield


@needs_ipv6
@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48])
async def test_get_stats_many_to_localhost_cancelled_mid_connect_leaks_nothing(
    turns: int, localhost_emulator: tuple[JourneyEmulator, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, port = localhost_emulator
    with contextlib.ExitStack() as stack:
        found = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)
        if len({address for *_, address in found}) < 2:
            # Here localhost is 127.0.0.1 alone: it is given ::1 first, as
            # where /etc/hosts lists both, nothing listening there.
            stack.enter_context(reserved_ipv6(port))
            resolving(monkeypatch, [info("::1", port), info("127.0.0.1", port)], "localhost")
        client = ja.AsyncJourneyClient(
            "test-token", base_url=f"http://localhost:{port}", max_concurrency=50, retry=None
        )
        async with no_socket_left(port), client:
            fan_out = asyncio.ensure_future(client.get_stats_many(emulator.journey_ids))
            for _ in range(turns):
                await asyncio.sleep(0)
            fan_out.cancel()
            async with asyncio.timeout(5):
                with contextlib.suppress(asyncio.CancelledError):
                    await fan_out
