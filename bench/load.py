"""The load process: HTTP/1.1 keep-alive requests from `concurrency` connections, as fast as
the server answers, for a number of requests or seconds; prints one JSON line with every
latency (seconds) and the req/s. Run as its own process so that the server under test never
shares an interpreter (or a GIL) with its load:

    python -m bench.load <<< '{"url": "http://127.0.0.1:5101", "requests": [["GET", "/spaces/", {}, ""]],
                           "concurrency": 8, "count": 2000, "seconds": 30}'

Requests rotate through the list (one [method, path, headers, body] each; a fifth element
"unique" makes "{n}" in the body the send's number, so that creates never repeat); an answer
whose status is not in `ok` (default: any 2xx) ends the run with an error.
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def _connection(host, port, requests, ok, state, latencies, stop_at):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while state["sent"] < state["count"] and time.perf_counter() < stop_at:
            index = state["sent"]
            state["sent"] += 1
            raw = requests[index % len(requests)]
            if isinstance(raw, tuple):      # a body of its own for each send: "{n}" is the send's number
                raw = encode(raw[0], raw[1], raw[2], raw[3], raw[4].replace("{n}", str(index)))
            start = time.perf_counter()
            writer.write(raw)
            status, _ = await _response(reader)
            latencies.append(time.perf_counter() - start)
            if not (200 <= status < 300 if ok is None else status in ok):
                raise RuntimeError(f"request {index} answered {status}")
    finally:
        writer.close()


async def _response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            raise RuntimeError("chunked answers are not expected")
    body = await reader.readexactly(length) if length else b""
    return status, body


def encode(host, method, path, headers, body):
    body = body.encode() if isinstance(body, str) else body
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run(spec):
    parts = urlsplit(spec["url"])
    host = parts.netloc
    requests = [(host, r[0], r[1], r[2], r[3]) if len(r) > 4 and r[4] == "unique" else encode(host, *r[:4])
                for r in spec["requests"]]
    ok = set(spec["ok"]) if spec.get("ok") else None
    state = {"sent": 0, "count": spec.get("count") or 10**12}
    latencies = []
    start = time.perf_counter()
    stop_at = start + spec.get("seconds", 3600)
    await asyncio.gather(*(_connection(parts.hostname, parts.port, requests, ok, state, latencies, stop_at)
                           for _ in range(spec["concurrency"])))
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "latencies": latencies}


def main():
    spec = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
