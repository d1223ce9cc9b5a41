"""``storage_span`` makes the span the official one makes, with the Sentry SDK set up.

Setting up the SDK patches the standard library for the whole process, so
this runs in a child process: it records the spans both clients' helpers
send (through an in-memory transport; nothing leaves the process) and
prints them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.compat.official import OFFICIAL

if OFFICIAL is None:  # pragma: no cover
    pytest.skip(
        "the official client (dependency group peer) is not installed", allow_module_level=True
    )
pytest.importorskip("sentry_sdk")

CHILD = """
import json, sentry_sdk
from sentry_sdk.transport import Transport

spans = []

class Keep(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "span":
                spans.extend(item.payload.json["items"])

sentry_sdk.init(
    dsn="http://public@127.0.0.1:9/1", traces_sample_rate=1.0, transport=Keep,
    default_integrations=False, _experiments={"trace_lifecycle": "stream"},
)
import objectstore_client.client as official
import objectstore_sync.client as ours
for side in (official, ours):
    scope = side.Scope(org=42, project="p")
    with sentry_sdk.traces.start_span(name="root"):
        with side.storage_span(
            "put", side.Usecase("attachments"), scope, key="k", size=None, parts=3
        ) as span:
            span.set_attribute("objectstore.found", True)
sentry_sdk.flush()
print(json.dumps(spans))
"""

VOLATILE = ("thread.", "sentry.segment.", "sentry.sdk.", "process.", "server.", "sentry.release")


def _shape(span: dict[str, object]) -> tuple[object, ...]:
    attributes = span["attributes"]
    assert isinstance(attributes, dict)
    kept = {k: v["value"] for k, v in attributes.items() if not k.startswith(VOLATILE)}
    return (span["name"], span["status"], kept)


def test_storage_span_matches_the_official_one() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    spans = [s for s in json.loads(done.stdout) if s["name"] != "root"]
    assert len(spans) == 2
    theirs, ours = (_shape(s) for s in spans)
    assert ours == theirs
    name, _, attributes = ours
    assert name == "objectstore.put attachments"
    assert isinstance(attributes, dict)
    assert attributes["objectstore.scopes.org"] == 42
    assert attributes["objectstore.found"] is True
    assert "objectstore.size" not in attributes
