"""The official client's README examples run against the emulator with only the import changed.

The README is read from the installed ``objectstore-client`` package's
metadata. Every Python example that uses the client runs with
``objectstore_client`` replaced by ``objectstore_sync`` and nothing else of
its code changed. What the README leaves to the reader is filled in: the
server URL (``http://localhost:8888``) is the emulator's, ``"<private
key>"`` is the test key, and names the examples assume from their context
(``session``, ``key``, ``video_data``, the imports of earlier examples) are
defined first. Each example also runs with the official client in the same
setting, which shows the setting is a fair one.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from objectstore_sync.testing import LocalServer
from tests.compat.official import OFFICIAL, PACKAGE

if OFFICIAL is None:  # pragma: no cover
    pytest.skip(
        "the official client (dependency group peer) is not installed", allow_module_level=True
    )

DATA = Path(__file__).parent.parent / "data"
PEM = (DATA / "ed25519.private.pem").read_text()
KID = "my-service"  # the key id the README's examples use

# The setting each README section's examples need, by section heading. A section that is
# not here fails the test: the README changed and the change needs a look.
PLAIN = "a session of a client without a token"
SIGNED = "a session of a client with a SecretKey, on a server that enforces auth"
NOT_CLIENT_CODE = "no client code (Sentry set-up)"
SETTINGS = {
    "Quick Start": PLAIN,
    "Usecases and Scopes": PLAIN,
    "Expiration": PLAIN,
    "Origin Tracking": PLAIN,
    "Compression": PLAIN,
    "Custom Metadata": PLAIN,
    "Multipart Upload API": PLAIN,
    "Authentication": PLAIN,
    "Object URLs": SIGNED,
    "Pre-signed URLs": SIGNED,
    "Configuration": PLAIN,
    "Tracing": NOT_CLIENT_CODE,
}


def _examples() -> list[tuple[str, int, str]]:
    """(section heading, index in the section, code) of each Python example, in order."""
    message: Any = importlib.metadata.metadata("objectstore-client")  # an email.message.Message
    text = message.get_payload()
    assert isinstance(text, str)
    found = []
    heading = ""
    counts: dict[str, int] = {}
    for part in re.split(r"(^#+ [^\n]*$|^```python\n.*?^```$)", text, flags=re.M | re.S):
        if part.startswith("#"):
            heading = part.lstrip("#").strip()
        elif part.startswith("```python"):
            code = part.removeprefix("```python\n").removesuffix("```")
            found.append((heading, counts.get(heading, 0), code))
            counts[heading] = counts.get(heading, 0) + 1
    return found


EXAMPLES = _examples()


def _imports(code: str) -> list[str]:
    return [line for line in code.splitlines() if re.match(r"(from \S+ )?import ", line)]


def _prepare(code: str, package: str, url: str) -> str:
    code = code.replace("objectstore_client", package)  # the import: the one real change
    code = code.replace("http://localhost:8888", url)
    return code.replace('"<private key>"', repr(PEM))


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LocalServer]]:
    keys = {KID: DATA / "ed25519.public.pem"}
    with LocalServer() as plain, LocalServer(auth_keys=keys, enforce_auth=True) as signed:
        yield {PLAIN: plain, SIGNED: signed}


def _run(package: str, index: int, servers: dict[str, LocalServer]) -> None:
    heading, _, code = EXAMPLES[index]
    setting = SETTINGS[heading]
    server = servers[setting]
    module = __import__(package)
    namespace: dict[str, Any] = {}
    for _, _, earlier in EXAMPLES[:index]:  # what the reader has imported by now
        for line in _imports(_prepare(earlier, package, server.url)):
            exec(line, namespace)
    token = module.SecretKey(KID, PEM) if setting == SIGNED else None
    client = module.Client(server.url, token=token)
    session = client.session(module.Usecase("attachments"), org=42, project=1337)
    namespace.update(
        client=client,
        session=session,
        key=session.put(b"Hello, world!"),
        video_data=b"\x00\x00\x00\x18ftypmp42" + bytes(1000),
        zstd_data=zstandard.ZstdCompressor().compress(b"already compressed " * 10),
        new_parts=[],
    )
    session.put(b"the object the URL examples hand out", key="my-key")
    try:
        if heading == "Multipart Upload API" and EXAMPLES[index][1] > 0:
            # Resuming needs an upload still open (a completed one is unknown to the
            # server, PROTOCOL §9.2), with a part already stored.
            upload = session.initiate_multipart_upload(key="my-large-object", compression="none")
            upload.put_part(b"part1", part_number=1, content_length=5)
            namespace["upload"] = upload
        exec(compile(_prepare(code, package, server.url), f"README {heading}", "exec"), namespace)
    finally:
        for value in [client, *namespace.values()]:
            if isinstance(value, module.Client):
                _close(value)


def _close(client: Any) -> None:
    if hasattr(client, "close"):
        client.close()
    else:  # the official client has no close(); its urllib3 pool is closed directly
        client._pool.close()


def _param(index: int) -> Any:
    heading, number, _ = EXAMPLES[index]
    return pytest.param(index, id=f"{heading} {number + 1}")


CLIENT_EXAMPLES = [
    _param(i)
    for i, (heading, _, _) in enumerate(EXAMPLES)
    if SETTINGS.get(heading) != NOT_CLIENT_CODE
]


def test_every_section_is_known() -> None:
    assert {heading for heading, _, _ in EXAMPLES} <= set(SETTINGS)
    assert len(CLIENT_EXAMPLES) >= 12  # the README had 13 client examples in 0.2.10


@pytest.mark.parametrize("index", CLIENT_EXAMPLES)
def test_readme_example_runs(index: int, servers: dict[str, LocalServer]) -> None:
    _run(PACKAGE, index, servers)  # the referee: the official client, same setting
    _run("objectstore_sync", index, servers)
