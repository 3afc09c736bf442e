"""WebSocket readers for P2 and P6, run as their own processes so they do not share a loop with
the producer: `python -m bench.ws_clients URL --clients N --silent K --seconds S --t-base T OUT`.

Every benchmark event carries `records_written` = microseconds since T when it was sent, so a
`step.updated` update tells its own send time: latency = arrival − that. A frame may be one
update or (with `?batch=1`) a JSON array of them; every `step.updated` in it counts. With `ack=1`
in the URL the reader answers each frame once it has handled it, as the dashboard does. Latencies
are kept as a histogram of 0.1 ms bins (1,000 readers × 1,000 updates/s would be millions of
floats). With `--dump` the (queue_id, records_written, arrival) triples are written too, to join
with the producer's log.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def reader(
    url: str, t_base: float, out: dict, dump: list | None, ready: asyncio.Event,
    counter: list[int], total: int,
) -> None:
    ack = "ack=1" in url
    try:
        # no permessage-deflate: the readers share the CPUs with the server and must not be
        # the bottleneck (a browser would negotiate it; see the P6 profile note)
        async with connect(url, max_queue=None, open_timeout=60, ping_interval=None,
                           max_size=None, compression=None) as ws:
            counter[0] += 1
            if counter[0] >= total:
                ready.set()
            while True:
                raw = await ws.recv(decode=False)
                now = time.time()
                frame = orjson.loads(raw)
                at_ms = (now - t_base) * 1e3
                hist = out["hist"]
                for msg in frame if isinstance(frame, list) else (frame,):
                    if msg.get("event") != "step.updated":
                        continue
                    rw = msg.get("records_written") or 0
                    tenths = int((at_ms - rw / 1e3) * 10)
                    hist[tenths] = hist.get(tenths, 0) + 1
                    if out["dump"] is not None:
                        out["dump"].append((msg["queue_id"], rw, now))
                if ack:
                    await ws.send("ack")  # drawn: the next frame may come (`?ack=1`)
    except ConnectionClosed as exc:
        out["closed"].append(exc.rcvd.code if exc.rcvd else 0)
    except OSError:
        out["errors"] += 1


async def silent(url: str) -> None:
    """Connects and never reads: tiny kernel buffer so its backlog shows up server-side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    sock.connect((host, int(port)))
    async with connect(url, sock=sock, max_queue=1, ping_interval=None, open_timeout=60):
        await asyncio.sleep(3600)


async def main(a: argparse.Namespace) -> None:
    out: dict = {"hist": {}, "closed": [], "errors": 0, "dump": None}
    dump = None
    ready = asyncio.Event()
    counter = [0]
    silent_tasks = [asyncio.create_task(silent(a.url)) for _ in range(a.silent)]
    tasks = []
    for i in range(a.clients):
        tasks.append(asyncio.create_task(reader(a.url, a.t_base, out, dump, ready, counter, a.clients)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(ready.wait(), 120)
    print("READY", flush=True)
    # the parent runs phases: one line on stdin per phase with its duration, "quit" to end
    loop = asyncio.get_running_loop()
    phase = 0
    while True:
        line = (await loop.run_in_executor(None, input)).strip()
        if line == "quit":
            break
        out["hist"], out["dump"] = {}, [] if a.dump else None
        closed_before = len(out["closed"])
        await asyncio.sleep(float(line) + a.drain)
        result = {
            "hist": out["hist"],
            "closed": out["closed"][closed_before:],
            "errors": out["errors"],
            "connected": counter[0],
            "dump": out["dump"],
        }
        with open(f"{a.out}.{phase}", "wb") as fh:
            fh.write(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS))
        phase += 1
        print("DONE", flush=True)
    for t in tasks + silent_tasks:
        t.cancel()
    await asyncio.gather(*tasks, *silent_tasks, return_exceptions=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--silent", type=int, default=0)
    p.add_argument("--t-base", type=float, required=True)
    p.add_argument("--drain", type=float, default=2.0)
    p.add_argument("--dump", action="store_true")
    asyncio.run(main(p.parse_args()))
