"""What the core tells a twin to do with a file payload before each attempt, and the chunk
check both twins' readers apply (``objectstore_core._http``), without files or sockets."""

from __future__ import annotations

import pytest

from objectstore_core import UploadReplay, check_upload_chunk


def test_the_first_attempt_notes_the_position_and_later_ones_seek_back() -> None:
    replay = UploadReplay()
    assert replay.begin() == "note"
    assert replay.started  # touched: the retry decision now knows
    replay.start = 7  # what the twin's tell() found
    assert replay.begin() == 7
    assert replay.begin() == 7


def test_a_file_that_cannot_seek_is_left_alone_after_the_first_attempt() -> None:
    replay = UploadReplay()
    assert replay.begin() == "note"  # the twin notes None: it cannot seek
    assert replay.begin() is None


def test_position_zero_is_a_seek_not_nothing() -> None:
    replay = UploadReplay()
    replay.begin()
    replay.start = 0
    assert replay.begin() == 0


@pytest.mark.parametrize("chunk", [b"ab", bytearray(b"ab"), memoryview(b"ab")])
def test_bytes_like_chunks_pass_as_they_are(chunk: bytes | bytearray | memoryview) -> None:
    assert check_upload_chunk(chunk) is chunk


@pytest.mark.parametrize("chunk", ["text", 3, None])
def test_other_chunks_are_refused_naming_the_type(chunk: object) -> None:
    with pytest.raises(TypeError, match=f"produced {type(chunk).__name__} .*chunks must be bytes"):
        check_upload_chunk(chunk)
