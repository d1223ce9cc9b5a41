"""Per-operation authorization in batches (PROTOCOL §8.3, §10.4), both twins."""

from __future__ import annotations

from objectstore_sync import BatchError, Forbidden, ObjectstoreError, SecretKey, Usecase
from tests.auth.conftest import KID, PRIVATE_PEM, READ_ONLY_KID, MakeTwin


def test_a_read_only_token_gets_403_for_writes_and_successes_for_reads(
    make_twin: MakeTwin,
) -> None:
    writer = make_twin(SecretKey(KID, PRIVATE_PEM)).session(Usecase("attachments"), org=7)
    writer.put(b"readable", key="r")
    reader = make_twin(SecretKey(READ_ONLY_KID, PRIVATE_PEM)).session(Usecase("attachments"), org=7)
    batch = reader.many()
    batch.get("r")
    batch.put(b"nope", key="w")
    batch.head("r")
    batch.delete("r")
    batch.put(b"keyless nope")
    batch_results = batch.send()
    got, put, head, delete, keyless = batch_results
    assert got.ok and got.value.read() == b"readable"
    assert head.ok and head.value is not None
    for denied in (put, delete, keyless):
        assert isinstance(denied.error, Forbidden), denied
    failures: list[BaseException] = []
    try:
        batch_results.raise_for_failures()
    except* Forbidden as group:
        assert isinstance(group, ObjectstoreError) and isinstance(group, BatchError)
        failures += group.exceptions
    assert [(e.operation, e.key) for e in failures] == [  # type: ignore[attr-defined]
        ("batch put #1", "w"),
        ("batch delete #3", "r"),
        ("batch put #4", None),
    ]
    assert writer.get("r").read() == b"readable"
    assert writer.get("w") is None
