"""Hand-made zstd frames for tests: what a hostile server could send (RFC 8878)."""

from __future__ import annotations

_MAGIC = (0xFD2FB528).to_bytes(4, "little")
RLE_BLOCK = 128 * 1024  # the largest block: 4 input bytes regenerate 128 KiB


def rle_frame(blocks: int, *, declared: int | None = None, byte: int = 0) -> bytes:
    """A zstd frame of ``blocks`` RLE blocks of 128 KiB each (4 bytes per block).

    With ``declared``, the header states that Frame_Content_Size (4-byte
    field, window of 128 KiB, so not a single-segment frame), whatever the
    blocks really hold: a hostile server's frame.
    """
    descriptor = 0x80 if declared is not None else 0x00  # FCS field of 4 bytes, or none
    header = _MAGIC + bytes([descriptor, 0x38])  # window descriptor: 2**17 bytes
    if declared is not None:
        header += declared.to_bytes(4, "little")

    def block(last: int) -> bytes:
        return ((RLE_BLOCK << 3) | (1 << 1) | last).to_bytes(3, "little") + bytes([byte])

    return header + block(0) * (blocks - 1) + block(1)
