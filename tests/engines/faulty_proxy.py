"""A fault-injecting HTTP proxy on loopback: drops connections, answers 500 and 429, delays.

Deliberate faults in front of a real server, for testing the HTTP engine's
retries. One request per connection; the request is forwarded with
`Connection: close` and the whole response relayed.
"""

import asyncio
import random
import threading
from collections import Counter


class FaultyProxy:
    def __init__(
        self,
        upstream_port: int,
        fault_rate: float = 0.2,
        kinds=("drop", "500", "429", "delay"),
        seed: int = 0,
        delay_s: float = 0.3,
    ):
        self.upstream_port, self.fault_rate, self.kinds, self.delay_s = upstream_port, fault_rate, kinds, delay_s
        self.rng = random.Random(seed)
        self.counts: Counter = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        fault = self.rng.choice(self.kinds) if self.rng.random() < self.fault_rate else None
        self.counts[fault or "forwarded"] += 1
        if fault == "drop":
            writer.transport.abort()  # no response at all: a connection error for the client
            return
        if fault in ("500", "429"):
            status = "500 Internal Server Error" if fault == "500" else "429 Too Many Requests"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        if fault == "delay":
            await asyncio.sleep(self.delay_s)
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("connection:")]
        fwd = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + body
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_w.write(fwd)
        await up_w.drain()
        response = await up_r.read()
        up_w.close()
        writer.write(response)
        await writer.drain()
        writer.close()
