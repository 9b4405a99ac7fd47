"""
An emulator of the Pushwoosh Customer Journey API, for tests, benchmarks and the demo.

Its public face is `journey_async.testing`; the modules here, by concern:

- `._asgi`: the ASGI 3 types, responses encoded once, body reading, lifespan;
- `._data`: what it holds (points, journeys and their users, recorded
  requests) and the deterministic sample data;
- `._faults`: `Fault`, the transient faults *fault_rate* draws from, scripted
  faults and the responses they send;
- `._state`: its configuration, journeys and users, scripted faults and counters;
- `._app`: `JourneyEmulator`, the ASGI app: routing, answers, removals;
- `._transport`: `EmulatorTransport` (in-process under httpx) and `emulator_client`;
- `._serving`: on a real socket, in a thread or in another process (uvicorn,
  imported only when serving starts);
- `._stop`: the signals that stop a foreground emulator, recorded in every
  phase of its start.

Nothing is imported here, so a caller pays only for the parts it uses.
"""
