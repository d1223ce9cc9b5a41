"""Client CPU per HTTP/1.1 exchange: h11 against the core's own codec.

    python benchmarks/h11_vs_codec.py [--exchanges 10000] [--repeats 7] [--ops 200]

DESIGN ("HTTP/1.1 lives once") prefers h11 as the core's HTTP/1.1 machine
unless a benchmark shows the home-grown codec (``objectstore_core._h1``)
clearly cheaper. This is that benchmark. Two exchanges, both in memory:

* a 1 KiB GET: the request head out; a response head with the headers an
  Objectstore GET answers with and a 1 KiB ``content-length`` body in;
* a 1 KiB PUT: the request head and a 1 KiB body out (``content-length``);
  a small JSON answer in.

Each is run many times through (a) one ``h11.Connection(our_role=CLIENT)``
(send Request, Data, EndOfMessage; receive_data; next_event until
EndOfMessage; start_next_cycle) and (b) ``encode_request_head`` and a
``ResponseParser``. Both sides end with what the client needs from a
response: a ``str`` header dict and the body bytes. ``time.process_time``
times each run; the medians over the repeats are printed in µs per exchange.

Then the real sync client does 1 KiB puts and gets against the emulator in a
separate process (the helpers of ``run.py``: ``_harness.Emulator`` and the
``small`` case of ``_worker.py``), which gives the whole client's CPU per
small operation, and the difference is put in those terms. Issue 12's rule:
if h11 adds at most 15 % client CPU per 1 KiB get or put, the core should
switch to h11; otherwise it keeps the codec and fuzzes it against h11
(``tests/core/test_h1_vs_h11.py``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11
from _harness import KIB, Emulator, json_like, median, package_version
from _worker import small

from objectstore_core._h1 import END, NEED_DATA, ResponseHead, ResponseParser, encode_request_head
from objectstore_core._http import Request

RULE = 0.15
"""h11 is taken when it adds at most this share of client CPU per small operation."""

HOST = "127.0.0.1:8888"
TARGET = "/v1/objects/bench/org=1/small-sync-anon-17"
REQUEST_HEADERS = (
    ("user-agent", "objectstore-client/0.1.0 (objectstore-py)"),
    ("accept-encoding", "identity"),
)
PAYLOAD = json_like(KIB)

GET_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: application/octet-stream\r\n"
    b"x-sn-time-created: 2026-12-02T21:47:01.072506Z\r\n"
    b"x-sn-expiration: manual\r\n"
    b"x-sn-size: 1024\r\n"
    b"accept-ranges: bytes\r\n"
    b"server: objectstore-emulator\r\n"
    b"date: Wed, 02 Dec 2026 21:47:01 GMT\r\n"
    b"content-length: 1024\r\n"
    b"\r\n" + PAYLOAD
)
PUT_ANSWER = b'{"key":"small-sync-anon-17"}'
PUT_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: application/json\r\n"
    b"server: objectstore-emulator\r\n"
    b"date: Wed, 02 Dec 2026 21:47:01 GMT\r\n"
    b"content-length: %d\r\n"
    b"\r\n%s" % (len(PUT_ANSWER), PUT_ANSWER)
)

Exchange = Callable[[], tuple[dict[str, str], bytes]]


# ---------------------------------------------------------------- the codec


def codec_get() -> tuple[dict[str, str], bytes]:
    out = encode_request_head(Request("GET", TARGET, REQUEST_HEADERS), HOST)
    assert out
    return _codec_receive("GET", GET_RESPONSE)


def codec_put() -> tuple[dict[str, str], bytes]:
    request = Request("PUT", TARGET, (*REQUEST_HEADERS, ("content-type", "text/plain")), PAYLOAD)
    out = encode_request_head(request, HOST) + PAYLOAD  # small bodies go out joined
    assert out
    return _codec_receive("PUT", PUT_RESPONSE)


def _codec_receive(method: str, wire: bytes) -> tuple[dict[str, str], bytes]:
    parser = ResponseParser(method)
    parser.feed(wire)
    head = parser.next_event()
    assert isinstance(head, ResponseHead)
    body = b""
    while (event := parser.next_event()) is not END:
        assert event is not NEED_DATA and isinstance(event, bytes | memoryview)
        body += event
    assert parser.reusable
    return head.headers, body


# --------------------------------------------------------------------- h11


class H11Client:
    """One h11 client connection, reused across exchanges as a pool would."""

    def __init__(self) -> None:
        self.conn = h11.Connection(our_role=h11.CLIENT)
        self.get_headers = [("host", HOST), *REQUEST_HEADERS]
        self.put_headers = [
            ("host", HOST),
            *REQUEST_HEADERS,
            ("content-type", "text/plain"),
            ("content-length", str(len(PAYLOAD))),
        ]

    def get(self) -> tuple[dict[str, str], bytes]:
        conn = self.conn
        out = conn.send(h11.Request(method="GET", target=TARGET, headers=self.get_headers))
        assert out is not None
        out = conn.send(h11.EndOfMessage())
        return self._receive(GET_RESPONSE)

    def put(self) -> tuple[dict[str, str], bytes]:
        conn = self.conn
        pieces = [
            conn.send(h11.Request(method="PUT", target=TARGET, headers=self.put_headers)),
            conn.send(h11.Data(data=PAYLOAD)),
            conn.send(h11.EndOfMessage()),
        ]
        assert b"".join(piece for piece in pieces if piece)
        return self._receive(PUT_RESPONSE)

    def _receive(self, wire: bytes) -> tuple[dict[str, str], bytes]:
        conn = self.conn
        conn.receive_data(wire)
        headers: dict[str, str] = {}
        body = b""
        while True:
            event = conn.next_event()
            if type(event) is h11.Response:
                # What the client needs: str names and values, repeats joined.
                for name, value in event.headers:
                    key, text = name.decode("latin-1"), value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
        conn.start_next_cycle()
        return headers, body


# ------------------------------------------------------------------ timing


def per_exchange_us(exchange: Exchange, n: int, repeats: int) -> float:
    """Median over ``repeats`` runs of ``n`` exchanges, in CPU µs per exchange."""
    for _ in range(min(n, 1000)):  # warm caches
        exchange()
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(n):
            exchange()
        runs.append((time.process_time() - started) / n * 1e6)
    return median(runs)


def client_cpu_us(ops: int, repeats: int) -> dict[str, float]:
    """The sync client's CPU µs per 1 KiB put and get against the emulator (another process)."""
    with Emulator() as emulator:
        result = small({"client": "sync", "url": emulator.url, "n": ops, "repeats": repeats})
    return {op: float(result[op]["cpu_us"]) for op in ("put", "get")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--exchanges", type=int, default=10000, help="exchanges per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure")
    parser.add_argument("--ops", type=int, default=200, help="client operations per timed run")
    args = parser.parse_args()
    h11_client = H11Client()
    for name, codec, other in (
        ("get", codec_get, h11_client.get),
        ("put", codec_put, h11_client.put),
    ):
        if codec() != other():
            raise SystemExit(f"{name}: the codec and h11 disagree on the response")

    version = package_version("h11")
    print(f"h11 {version}, {args.exchanges} exchanges x {args.repeats} runs (medians)")
    print(f"{'':>14} {'codec':>9} {'h11':>9} {'h11/codec':>10}")
    exchange_us: dict[str, tuple[float, float]] = {}
    for name, codec, other in (
        ("1 KiB get", codec_get, h11_client.get),
        ("1 KiB put", codec_put, h11_client.put),
    ):
        ours = per_exchange_us(codec, args.exchanges, args.repeats)
        theirs = per_exchange_us(other, args.exchanges, args.repeats)
        exchange_us[name.split()[-1]] = (ours, theirs)
        print(f"{name:>14} {ours:7.2f} µs {theirs:6.2f} µs {theirs / ours:9.1f}x")

    runs = max(3, args.repeats // 2)
    client = client_cpu_us(args.ops, runs)
    print(f"\nwhole sync client against the emulator ({args.ops} ops x {runs} runs, medians):")
    worst = 0.0
    for op in ("get", "put"):
        ours, theirs = exchange_us[op]
        share = (theirs - ours) / client[op]
        worst = max(worst, share)
        print(
            f"  1 KiB {op}: {client[op]:6.1f} µs client CPU per op; "
            f"h11 would add {share:.1%} client CPU per 1 KiB {op}"
        )
    if worst <= RULE:
        print(f"verdict: h11 adds at most {RULE:.0%} (worst {worst:.1%}): switch the core to h11")
    else:
        print(
            f"verdict: h11 adds more than {RULE:.0%} (worst {worst:.1%}): keep the codec "
            "and fuzz it against h11 (tests/core/test_h1_vs_h11.py)"
        )


if __name__ == "__main__":
    main()
