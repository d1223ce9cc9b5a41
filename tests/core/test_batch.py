"""The batch wire format and flows (PROTOCOL §8), without sockets.

The encoder is checked byte by byte against §8.1; the decoder gives the same
events however the response is chunked; the flows are driven by hand with
scripted responses, including malformed ones (each must fail exactly the
affected operations) and retries under the client's policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import zstandard

from objectstore_core import (
    BatchBuilder,
    BatchDecoder,
    BatchError,
    BatchPart,
    BatchResult,
    BatchResults,
    Clock,
    Compress,
    EncodedPart,
    FetchedObject,
    Forbidden,
    ObjectstoreError,
    ProtocolError,
    RateLimited,
    ReadBody,
    Request,
    Response,
    RetryPolicy,
    Scope,
    SendRequest,
    ServerError,
    Sleep,
    Target,
    Usecase,
    client_config,
    encode_batch,
    session_target,
)
from objectstore_core._batch import END, NEED_DATA, encode_batch_key, encoded_size

USECASE = Usecase("attachments")
TARGET = Target("", USECASE, Scope(org=42))
BOUNDARY = "os-boundary-00112233445566778899aabbccddeeff"
BATCH_PATH = "/v1/objects:batch/attachments/org=42/"


# ------------------------------------------------------------------- encoder


def test_request_body_is_byte_exact() -> None:
    parts = [
        EncodedPart("insert", "notes/a.txt", (("content-type", "text/plain"),), b"hello"),
        EncodedPart("insert", None, (), b"\x00\x01"),
        EncodedPart("get", "missing"),
        EncodedPart("delete", "caf\u00e9 x"),
    ]
    body = b"".join(encode_batch(parts, BOUNDARY))
    disposition = b'content-disposition: form-data; name="part"\r\n'
    expected = (
        b"--" + BOUNDARY.encode() + b"\r\n" + disposition
        + b"x-sn-batch-operation-kind: insert\r\n"
        + b"x-sn-batch-operation-key: notes%2Fa%2Etxt\r\n"
        + b"content-type: text/plain\r\n\r\nhello\r\n"
        + b"--" + BOUNDARY.encode() + b"\r\n" + disposition
        + b"x-sn-batch-operation-kind: insert\r\n\r\n\x00\x01\r\n"
        + b"--" + BOUNDARY.encode() + b"\r\n" + disposition
        + b"x-sn-batch-operation-kind: get\r\n"
        + b"x-sn-batch-operation-key: missing\r\n\r\n\r\n"
        + b"--" + BOUNDARY.encode() + b"\r\n" + disposition
        + b"x-sn-batch-operation-kind: delete\r\n"
        + b"x-sn-batch-operation-key: caf%C3%A9%20x\r\n\r\n\r\n"
        + b"--" + BOUNDARY.encode() + b"--\r\n"
    )  # fmt: skip
    assert body == expected


def test_keys_are_encoded_except_alphanumerics() -> None:
    assert encode_batch_key("abcXYZ019") == "abcXYZ019"
    assert encode_batch_key("a-b_c.d~e/f") == "a%2Db%5Fc%2Ed%7Ee%2Ff"
    assert encode_batch_key("\u00e9") == "%C3%A9"


@pytest.mark.parametrize(
    "part",
    [
        EncodedPart("get", "plain"),
        EncodedPart("delete", "é" * 300),  # each character two bytes, each byte three
        EncodedPart("insert", "日本/" * 50, (("x-snme-note", "n" * 40),), b"body"),
        EncodedPart("insert", None, (("content-type", "text/plain"),), b"keyless"),
    ],
)
def test_a_parts_size_estimate_bounds_its_encoding(part: EncodedPart) -> None:
    encoded = b"".join(encode_batch([part], BOUNDARY))
    closing = len(f"--{BOUNDARY}--\r\n")
    assert encoded_size(part, len(part.body)) >= len(encoded) - closing


def test_flow_sends_one_post_with_a_quoted_boundary() -> None:
    builder = BatchBuilder(TARGET)
    builder.put(b"hi", key="k", compress="none", metadata={"a": "b"})
    builder.get("g")
    [job] = builder.plan()
    step = next(job.flow())
    assert isinstance(step, SendRequest)
    request = step.request
    assert (request.method, request.target) == ("POST", BATCH_PATH)
    content_type = dict(request.headers)["content-type"]
    boundary = content_type.split('boundary="')[1].rstrip('"')
    assert content_type == f'multipart/form-data; boundary="{boundary}"'
    assert boundary.startswith("os-boundary-") and len(boundary) == 12 + 32
    assert isinstance(request.body, bytes)
    assert b"x-snme-a: b\r\n" in request.body
    assert request.body.endswith(f"--{boundary}--\r\n".encode())


def test_puts_without_options_take_the_usecases_defaults_each_time() -> None:
    """The defaults are worked out once per batch; a put with options of its own neither
    uses nor changes them."""
    from objectstore_core import TimeToLive

    for usecase in (
        Usecase("ttls", expiration_policy=TimeToLive(timedelta(hours=1))),
        Usecase("raws", compression="none"),
    ):
        builder = BatchBuilder(Target("", usecase, Scope(org=1)))
        builder.put(b"a", key="k1")
        builder.put(b"b", key="k2", content_type="text/plain", compress="none")
        builder.put(b"c", key="k3")
        first, other, third = builder._ops
        assert third.headers == first.headers and third.compress == first.compress
        assert third.head == first.head.replace(b"k1", b"k3")
        assert ("content-type", "text/plain") in other.headers and not other.compress
        assert not any(name == "content-type" for name, _ in third.headers)
        if usecase.compression == "zstd":
            assert ("x-sn-expiration", "ttl:1h") in first.headers
            assert ("content-encoding", "zstd") in first.headers and first.compress
        else:
            assert first.headers == () and not first.compress
    with pytest.raises(ValueError, match="precompressed"):
        builder.put(b"x", key="k4", precompressed="gzip")  # type: ignore[arg-type]
    assert len(builder._ops) == 3


# ------------------------------------------------------------------- decoder

RESPONSE_BOUNDARY = "os-boundary-ffeeddccbbaa99887766554433221100"


def _response_body() -> bytes:
    b = RESPONSE_BOUNDARY.encode()
    return (
        b"--" + b + b"\r\nx-sn-batch-operation-index: 3\r\n"
        b"x-sn-batch-operation-status: 400 Bad Request\r\n"
        b"content-disposition: form-data; name=part\r\n\r\n"
        b'{"detail":"batch error: bad request"}\r\n'
        b"--" + b + b"\r\nx-sn-batch-operation-index: 2\r\n"
        b"x-sn-batch-operation-key: missing\r\nx-sn-batch-operation-kind: get\r\n"
        b"x-sn-batch-operation-status: 404 Not Found\r\n\r\n\r\n"
        b"--" + b + b"\r\nx-sn-batch-operation-index: 0\r\n"
        b"x-sn-batch-operation-status: 200 OK\r\n\r\n"
        b"body with \r\n--os-boundary-ffee lookalike\r\n"
        b"--" + b + b"--"
    )  # fmt: skip


def _events(chunks: list[bytes]) -> list[Any]:
    decoder = BatchDecoder(RESPONSE_BOUNDARY)
    events: list[Any] = []
    for chunk in [*chunks, b""]:
        decoder.receive_data(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
            if event is END:
                return events
    return events


def test_decoder_gives_the_same_events_however_the_body_is_chunked() -> None:
    body = _response_body()
    whole = _events([body])
    assert [e.headers["x-sn-batch-operation-index"] for e in whole[:-1]] == ["3", "2", "0"]
    assert whole[-1] is END
    assert whole[2].body == b"body with \r\n--os-boundary-ffee lookalike"
    assert _events([body[i : i + 1] for i in range(len(body))]) == whole
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 20)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert _events(chunks) == whole


def test_empty_batch_is_only_the_closing_delimiter() -> None:
    assert _events([f"--{RESPONSE_BOUNDARY}--".encode()]) == [END]


@pytest.mark.parametrize(
    "body",
    [
        b"",  # nothing at all
        b"--" + RESPONSE_BOUNDARY.encode() + b"\r\nx-sn-batch-operation-index: 0\r\n",
        b"--" + RESPONSE_BOUNDARY.encode() + b"\r\nx: y\r\n\r\npart body that never ends",
        b"--" + RESPONSE_BOUNDARY.encode() + b"XX",  # delimiter followed by garbage
        b"--" + RESPONSE_BOUNDARY.encode() + b"\r\nno colon here\r\n\r\n\r\n",
    ],
)
def test_malformed_streams_raise_protocol_error_and_the_decoder_refuses_reuse(
    body: bytes,
) -> None:
    decoder = BatchDecoder(RESPONSE_BOUNDARY)
    if body:
        decoder.receive_data(body)
    decoder.receive_data(b"")  # the end of the body
    with pytest.raises(ProtocolError):
        while decoder.next_event() is not END:
            pass
    with pytest.raises(RuntimeError):
        decoder.next_event()


def test_parts_read_together_stop_at_a_malformed_one_which_fails_in_its_turn() -> None:
    b = b"--" + RESPONSE_BOUNDARY.encode()
    body = (
        b + b"\r\nx-sn-batch-operation-index: 0\r\nx-sn-size:  2 \r\n\r\nhi\r\n"
        + b + b"\r\n\r\nno headers\r\n"
        + b + b"\r\nX-Odd-Case : v\r\n\r\n\r\n"
        + b + b"\r\nx-sn-batch-operation-index: 3\r\n\r\nlast good\r\n"
        + b + b"\r\nx-sn-size\r\n\r\nno colon\r\n"
        + b + b"--"
    )  # fmt: skip
    decoder = BatchDecoder(RESPONSE_BOUNDARY)
    decoder.receive_data(body)
    events = [decoder.next_event() for _ in range(4)]
    parts = [e for e in events if isinstance(e, BatchPart)]
    assert [(e.headers, e.body) for e in parts] == [
        ({"x-sn-batch-operation-index": "0", "x-sn-size": "2"}, b"hi"),
        ({}, b"no headers"),
        ({"x-odd-case": "v"}, b""),
        ({"x-sn-batch-operation-index": "3"}, b"last good"),
    ]
    with pytest.raises(ProtocolError, match="malformed part header line 'x-sn-size'"):
        decoder.next_event()
    with pytest.raises(RuntimeError):
        decoder.next_event()


def test_a_response_read_whole_is_taken_into_parts_a_bounded_amount_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import objectstore_core._batch as wire

    body = b"".join(_ok_get(i, f"k{i}", b"x" * 100) for i in range(50))
    body += f"--{RESPONSE_BOUNDARY}--".encode()
    whole = _events([body])
    monkeypatch.setattr(wire, "_TAKEN_AT_ONCE", 1000)
    decoder = BatchDecoder(RESPONSE_BOUNDARY)
    decoder.receive_data(body)
    first = [decoder.next_event(), decoder.next_event()]  # the first through the general path
    assert 0 < len(decoder._ready) < 10  # the rest waits in the buffer
    assert [*first, *_drain(decoder)] == whole


def _drain(decoder: BatchDecoder) -> list[Any]:
    events: list[Any] = []
    while (event := decoder.next_event()) is not END:
        events.append(event)
    return [*events, END]


def test_a_part_over_the_limit_is_refused_without_waiting_for_its_end() -> None:
    decoder = BatchDecoder(RESPONSE_BOUNDARY, max_part_size=1000)
    decoder.receive_data(b"--" + RESPONSE_BOUNDARY.encode() + b"\r\n\r\n")
    with pytest.raises(ProtocolError, match="larger than the limit"):
        for _ in range(10):
            decoder.receive_data(b"x" * 500)
            assert decoder.next_event() is NEED_DATA


# --------------------------------------------------------------------- flows


def _part(index: int | None, status: str | None, body: bytes = b"", **headers: str) -> bytes:
    lines = []
    if index is not None:
        lines.append(f"x-sn-batch-operation-index: {index}")
    if status is not None:
        lines.append(f"x-sn-batch-operation-status: {status}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    head = "".join(line + "\r\n" for line in lines)
    return f"--{RESPONSE_BOUNDARY}\r\n{head}\r\n".encode() + body + b"\r\n"


def _multipart(*parts: bytes, close: bool = True) -> Response:
    body = b"".join(parts) + (f"--{RESPONSE_BOUNDARY}--".encode() if close else b"")
    headers = {"content-type": f'multipart/form-data; boundary="{RESPONSE_BOUNDARY}"'}
    return Response(200, headers, body)


Responder = Callable[[Request], Any]


def _run(builder: BatchBuilder, respond: Responder) -> tuple[list[BatchResult], list[float]]:
    """Drive every job of the plan like a driver; returns results and the sleeps."""
    results: list[BatchResult] = []
    sleeps: list[float] = []
    for job in builder.plan():
        flow = job.flow()
        reply: Any = None
        stream: list[Any] = []  # what ReadBody steps get: bytes, or an error to throw
        try:
            step = next(flow)
            while True:
                if isinstance(step, SendRequest):
                    outcome = respond(step.request)
                    if isinstance(outcome, tuple):  # (head, pieces): a streamed body
                        outcome, stream = outcome[0], list(outcome[1])
                    if isinstance(outcome, ObjectstoreError):
                        step = flow.throw(outcome)
                        continue
                    reply = outcome
                elif isinstance(step, ReadBody) and stream:
                    piece = stream.pop(0)
                    if isinstance(piece, ObjectstoreError):
                        step = flow.throw(piece)
                        continue
                    reply = piece
                elif isinstance(step, Compress):
                    reply = step.run(1)
                elif isinstance(step, Sleep):
                    sleeps.append(step.seconds)
                    reply = None
                elif isinstance(step, Clock):
                    reply = 0.0
                elif isinstance(step, ReadBody):
                    reply = b""  # the scripted responses carry their whole body
                step = flow.send(reply)
        except StopIteration as done:
            results += done.value
    return sorted(results, key=lambda r: r.index), sleeps


def _four_gets(target: Target = TARGET) -> BatchBuilder:
    builder = BatchBuilder(target)
    for key in ("a", "b", "c", "d"):
        builder.get(key)
    return builder


def _ok_get(index: int, key: str, body: bytes = b"x") -> bytes:
    return _part(
        index,
        "200 OK",
        body,
        x_sn_batch_operation_key=key,
        x_sn_batch_operation_kind="get",
        content_type="text/plain",
    )


def test_results_are_correlated_by_index_whatever_the_order() -> None:
    builder = BatchBuilder(TARGET)
    builder.put(b"one", key="k/1")
    builder.put(b"two")
    builder.get("gone")
    builder.head("h")
    builder.delete("d")

    def respond(request: Request) -> Response:
        assert request.target == BATCH_PATH
        return _multipart(
            _part(4, "204 No Content", x_sn_batch_operation_key="d"),
            _part(1, "201 Created", x_sn_batch_operation_key="gen%2D1"),
            _part(3, "204 No Content", x_sn_batch_operation_key="h", content_type="text/x"),
            _part(2, "404 Not Found", x_sn_batch_operation_key="gone"),
            _part(0, "201 Created", x_sn_batch_operation_key="k%2F1"),
        )

    results, _ = _run(builder, respond)
    assert [(r.index, r.kind, r.key, r.ok) for r in results] == [
        (0, "put", "k/1", True),
        (1, "put", "gen-1", True),
        (2, "get", "gone", True),
        (3, "head", "h", True),
        (4, "delete", "d", True),
    ]
    assert results[1].value == "gen-1" and results[2].value is None
    assert results[3].value.content_type == "text/x"


def test_malformed_parts_fail_exactly_their_operations() -> None:
    def respond(request: Request) -> Response:
        return _multipart(
            _ok_get(0, "a"),
            _part(None, "200 OK", b"who am I"),  # no index: nobody's result
            _part(9, "200 OK"),  # unknown index
            _part(1, None, b""),  # no status
            _ok_get(2, "c"),
            _ok_get(2, "c"),  # duplicate
        )  # "d" (index 3) gets no part at all

    results, _ = _run(_four_gets(), respond)
    assert results[0].ok and results[0].value.body == b"x"
    assert isinstance(results[0].value, FetchedObject)
    for index in (1, 2, 3):
        assert isinstance(results[index].error, ProtocolError), index
    assert "duplicate" in str(results[2].error)
    assert "no part" in str(results[3].error)
    assert len(results) == 4


@pytest.mark.parametrize("cut", [20, 0])
def test_a_truncated_or_unclosed_response_fails_only_the_unresulted(cut: int) -> None:
    # b's part is complete (the next delimiter follows it); a's part is cut
    # ``cut`` bytes before its end, or (0) the closing delimiter never comes.
    def respond(request: Request) -> Response:
        body = _ok_get(1, "b") + _ok_get(0, "a")
        headers = _multipart().headers
        return Response(200, headers, body[: len(body) - cut])

    results, _ = _run(_four_gets(), respond)
    assert results[1].ok and results[1].value.body == b"x"
    assert [type(r.error) for r in results if r.index != 1] == [ProtocolError] * 3
    assert "truncated" in str(results[0].error)


def test_a_response_without_a_multipart_type_fails_every_operation() -> None:
    results, _ = _run(_four_gets(), lambda request: Response(200, {}, b"{}"))
    assert all(isinstance(r.error, ProtocolError) for r in results)


def test_a_failed_request_fails_exactly_its_operations_with_context() -> None:
    def respond(request: Request) -> Response:
        return Response(403, {}, b'{"detail":"auth error: operation not allowed"}')

    results, sleeps = _run(_four_gets(), respond)
    assert sleeps == []
    for result in results:
        assert isinstance(result.error, Forbidden)
        assert result.error.operation == f"batch get #{result.index}"
        assert result.error.key == result.key


def _client_target(policy: RetryPolicy) -> Target:
    config = client_config("http://objectstore.test", retry=policy)
    return session_target(config, USECASE, {"org": 42})


POLICY = RetryPolicy(max_attempts=3, backoff=0.5, jitter=0.0)


def test_whole_request_503_is_retried_but_keyless_puts_are_never_replayed() -> None:
    builder = BatchBuilder(_client_target(POLICY))
    builder.put(b"keyless")
    builder.put(b"keyed", key="k")
    builder.get("g")
    sent: list[bytes] = []

    def respond(request: Request) -> Response:
        assert isinstance(request.body, bytes)
        sent.append(request.body)
        if len(sent) == 1:
            return Response(503, {}, b"")
        return _multipart(
            _part(0, "201 Created", x_sn_batch_operation_key="k"),
            _ok_get(1, "g"),
        )

    results, sleeps = _run(builder, respond)
    assert sleeps == [0.5]
    assert sent[0].count(b"x-sn-batch-operation-kind: insert") == 2
    assert sent[1].count(b"x-sn-batch-operation-kind: insert") == 1  # only the keyed one
    assert isinstance(results[0].error, ServerError)
    assert results[1].ok and results[2].ok


def test_connect_errors_replay_everything_because_nothing_left() -> None:
    from objectstore_core import ConnectError

    builder = BatchBuilder(_client_target(POLICY))
    builder.put(b"keyless")
    attempts: list[int] = []

    def respond(request: Request) -> Response | ObjectstoreError:
        attempts.append(1)
        if len(attempts) == 1:
            return ConnectError("refused")
        return _multipart(_part(0, "201 Created", x_sn_batch_operation_key="new"))

    results, _ = _run(builder, respond)
    assert len(attempts) == 2 and results[0].value == "new"


def test_per_part_429_and_503_are_retried_alone_until_the_policy_gives_up() -> None:
    builder = _four_gets(_client_target(POLICY))
    rounds: list[int] = []

    def respond(request: Request) -> Response:
        assert isinstance(request.body, bytes)
        count = request.body.count(b"x-sn-batch-operation-kind: get")
        rounds.append(count)
        if count == 4:
            return _multipart(
                _ok_get(0, "a"),
                _part(1, "429 Too Many Requests", b'{"detail":"batch error: rate limited"}'),
                _part(2, "503 Service Unavailable"),
                _ok_get(3, "d"),
            )
        # Later rounds hold only b and c: b keeps being rate limited, c succeeds.
        return _multipart(_part(0, "429 Too Many Requests"), _ok_get(1, "c"))

    results, sleeps = _run(builder, respond)
    assert rounds == [4, 2, 1]
    assert sleeps == [0.5, 1.0]
    assert [r.ok for r in results] == [True, False, True, True]
    assert isinstance(results[1].error, RateLimited)


def test_splitting_follows_the_limits() -> None:
    builder = BatchBuilder(TARGET)
    for i in range(2500):
        builder.delete(f"k{i}")
    builder.put(b"x" * (2 * 1024 * 1024), key="big")  # worst case > 1 MiB: individual
    builder.put(b"y" * 1_044_496, key="fits")  # zstd bound exactly 1 MiB: batched
    builder.put(b"z" * 1_044_497, key="over")  # one byte more: individual
    builder.put(b"w" * 1_048_576, key="raw", compress="none")  # raw 1 MiB: batched
    jobs = builder.plan()
    assert [(job.batched, job.size) for job in jobs] == [
        (False, 1),
        (False, 1),
        (True, 1000),
        (True, 1000),
        (True, 502),
    ]
    assert len(builder) == 0


def test_invalid_operations_raise_when_added() -> None:
    builder = BatchBuilder(TARGET)
    with pytest.raises(ValueError, match="key ''"):
        builder.get("")
    with pytest.raises(ValueError, match="compress twice"):
        builder.put(b"x", compress="zstd", precompressed="zstd")
    with pytest.raises(TypeError, match="cannot upload"):
        builder.put(12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="accept_encoding"):
        builder.get("k", accept_encoding=42)  # type: ignore[arg-type]
    assert len(builder) == 0


def test_compressed_puts_are_compressed_once_and_recorded_as_zstd() -> None:
    builder = BatchBuilder(TARGET)
    builder.put(b"a" * 1000, key="z")
    bodies: list[bytes] = []

    def respond(request: Request) -> Response:
        assert isinstance(request.body, bytes)
        bodies.append(request.body)
        return _multipart(_part(0, "201 Created", x_sn_batch_operation_key="z"))

    results, _ = _run(builder, respond)
    assert results[0].ok
    head, _, rest = bodies[0].partition(b"\r\n\r\n")
    assert b"content-encoding: zstd" in head
    frame = rest[: rest.index(b"\r\n--")]
    assert zstandard.ZstdDecompressor().decompress(frame) == b"a" * 1000


def test_batch_error_is_an_objectstore_error_and_an_exception_group() -> None:
    denied = Forbidden("no", 403, None)
    limited = RateLimited("slow", 429, None)
    results = BatchResults(
        [
            BatchResult(0, "put", "a", None, denied),
            BatchResult(1, "get", "b", None),
            BatchResult(2, "delete", "c", None, limited),
        ]
    )
    assert not results.ok and len(results.failures) == 2
    with pytest.raises(ObjectstoreError) as caught:
        results.raise_for_failures()
    assert isinstance(caught.value, ExceptionGroup) and isinstance(caught.value, BatchError)
    seen: list[Any] = []
    try:
        results.raise_for_failures()
    except* Forbidden as group:
        seen.append(group)
    except* RateLimited as group:
        seen.append(group)
    assert [type(g.exceptions[0]) for g in seen] == [Forbidden, RateLimited]
    assert all(isinstance(g, BatchError) for g in seen)
    assert seen[0].results[0].key == "a"
    BatchResults([BatchResult(0, "get", "x")]).raise_for_failures()  # nothing failed


def test_a_stream_broken_mid_response_resends_only_the_unresulted() -> None:
    from objectstore_core import ReadError

    builder = BatchBuilder(_client_target(POLICY))
    builder.get("a")
    builder.put(b"keyless")
    builder.put(b"keyed", key="k")
    builder.delete("d")
    sent: list[bytes] = []

    def respond(request: Request) -> Any:
        assert isinstance(request.body, bytes) and request.stream
        sent.append(request.body)
        head = _multipart()
        if len(sent) == 1:  # a's part arrives whole, then the connection drops
            first = _ok_get(0, "a") + f"--{RESPONSE_BOUNDARY}\r\n".encode()
            return Response(200, head.headers), [first[:7], first[7:], ReadError("reset")]
        streamed = _multipart(
            _part(1, "204 No Content", x_sn_batch_operation_key="d"),
            _part(0, "201 Created", x_sn_batch_operation_key="k"),
        )
        body = streamed.body
        return Response(200, head.headers), [body[i : i + 5] for i in range(0, len(body), 5)]

    results, sleeps = _run(builder, respond)
    assert sleeps == [0.5]
    assert sent[1].count(b"x-sn-batch-operation-kind:") == 2  # only k and d again
    assert b"x-sn-batch-operation-key: k\r\n" in sent[1]
    assert results[0].ok and results[0].value.body == b"x"
    assert isinstance(results[1].error, ReadError)  # the keyless put is never replayed
    assert results[2].value == "k" and results[3].ok


# ------------------------------------------------- reading a fetched object whole


def _fetched(body: bytes, *, decode: bool = True) -> Any:
    from objectstore_core import Metadata, ZstdContexts

    metadata = Metadata(size=len(body))
    spec = FetchedObject(metadata, body, decode, {"operation": "batch get #0", "key": "k"})
    return spec.download(ZstdContexts())


def _read_whole(download: Any, body: bytes) -> bytes:
    """What the twins' payloads do: read, and feed the stored bytes when asked for input."""
    parts = []
    while (chunk := download.read(None, whole=True)) != b"":
        if chunk is None:
            download.feed(body, last=True)
        else:
            parts.append(chunk)
    return b"".join(parts)


PAYLOAD = b"batched object " * 500


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(zstandard.ZstdCompressor().compress(PAYLOAD), id="one-frame"),
        pytest.param(
            zstandard.ZstdCompressor().compress(PAYLOAD[:3000])
            + zstandard.ZstdCompressor().compress(PAYLOAD[3000:]),
            id="two-frames",
        ),
        pytest.param(
            zstandard.ZstdCompressor(write_content_size=False).compress(PAYLOAD),
            id="no-declared-size",
        ),
    ],
)
def test_a_fetched_object_read_whole_decodes_once_and_then_ends(body: bytes) -> None:
    download = _fetched(body)
    assert _read_whole(download, body) == PAYLOAD
    assert download.read(None, whole=True) == b""
    assert download.finished and download.received == len(body)


def test_a_fetched_object_not_decoded_is_handed_out_as_stored() -> None:
    body = zstandard.ZstdCompressor().compress(PAYLOAD)
    download = _fetched(body, decode=False)
    assert _read_whole(download, body) == body
    assert download.finished


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda body: body[:-5], "truncated", id="truncated"),
        pytest.param(lambda body: body + b"junk", "trailing garbage", id="trailing-garbage"),
        pytest.param(
            lambda body: body[:12] + bytes(b ^ 0xFF for b in body[12:40]) + body[40:],
            "corrupt",
            id="corrupt-block",
        ),
    ],
)
def test_a_damaged_fetched_object_fails_every_read_the_same_way(
    damage: Callable[[bytes], bytes], message: str
) -> None:
    from objectstore_core import IntegrityError

    body = damage(zstandard.ZstdCompressor().compress(PAYLOAD))
    download = _fetched(body)
    for _ in range(2):  # no read after the error passes for the end of the payload
        with pytest.raises(IntegrityError, match=message):
            _read_whole(download, body)
    assert not download.finished


@pytest.mark.parametrize("name", ["put", "get", "head", "delete"])
def test_a_batch_takes_the_options_of_its_builder(name: str) -> None:
    import inspect

    from objectstore_core import BatchBase

    assert inspect.signature(getattr(BatchBase, name)) == inspect.signature(
        getattr(BatchBuilder, name)
    )
