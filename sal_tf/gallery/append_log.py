"""The folder store's append-only log: its record format, reading it back, and telling a torn tail
from damage.

A log file is an 8-byte magic, then records, each one change (a whole batch) fsynced before the
next starts. Two versions:

    SALGLOG1   [u32 payload length][u32 CRC-32 of the payload][payload]              (read only)
    SALGLOG2   ["SALR"][u32 payload length][u32 CRC-32 of the payload]
               [u32 CRC-32 of the 12 bytes before it][payload]                       (written)

Version 1 left the length unprotected: a corrupt length mid-log pointed past the end of the file
and was taken for a torn tail, so opening cut every record after it. Version 2 protects the header
by its own CRC, and gives each record a magic to find it by.

The rule for both: reading stops at the first record that cannot be read (short, bad header, a
length past the end, a payload that fails its CRC). If an intact record follows it anywhere in the
file, the log is damaged: `read` raises `StoreCorruptedError` naming the file, the byte and the
repair command, and changes nothing. If nothing intact follows, it is the one record a crash can cut
(the last, unacknowledged): `read` reports where the intact log ends, for the store to truncate.
`repair` keeps every intact record, including one whose length alone was damaged when its payload
still matches its CRC, and drops the rest.
"""

import contextlib
import dataclasses
import mmap
import os
import struct
import zlib

import numpy as np

from sal_tf.gallery.base import StoreCorruptedError

MAGIC_V1 = b"SALGLOG1"
MAGIC_V2 = b"SALGLOG2"
MAGIC_SIZE = 8
HEADER_V1 = struct.Struct("<II")  # payload length, payload CRC-32
HEADER_V2 = struct.Struct("<4sIII")  # record magic, payload length, payload CRC-32, CRC-32 of the 12 bytes before
RECORD_MAGIC = b"SALR"
OP_ADD, OP_DELETE = 1, 2  # a payload's first byte: the change it holds


def encode(payload):
    """One version-2 record of `payload` (bytes starting with an OP_ byte)."""
    head = RECORD_MAGIC + struct.pack("<II", len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def version_of(magic):
    """1 or 2 for a log's first 8 bytes; None otherwise."""
    return {MAGIC_V1: 1, MAGIC_V2: 2}.get(bytes(magic))


def _record_at(data, at, version):
    """(end, payload) of an intact record starting at byte `at`, or None."""
    size = len(data)
    header = HEADER_V1 if version == 1 else HEADER_V2
    if at + header.size > size:
        return None
    if version == 1:
        length, crc = header.unpack_from(data, at)
    else:
        magic, length, crc, head_crc = header.unpack_from(data, at)
        if magic != RECORD_MAGIC or zlib.crc32(data[at : at + 12]) != head_crc:
            return None
    start = at + header.size
    end = start + length
    if length < 1 or end > size or data[start] not in (OP_ADD, OP_DELETE):
        return None
    payload = data[start:end]
    return (end, bytes(payload)) if zlib.crc32(payload) == crc else None


def _candidates_v1(data, start, block=1 << 22):
    """Offsets >= start, in order, where a version-1 record could begin (its length fits in the file and
    its op byte is known): numpy over `block` bytes at a time, so a long log is scanned in bounded memory."""
    size = len(data)
    for lo in range(start, size - HEADER_V1.size, block):
        hi = min(lo + block, size - HEADER_V1.size)  # offsets [lo, hi)
        found = []
        for align in range(4):
            first = lo + align
            count = (hi - first + 3) // 4
            if count <= 0:
                continue
            lengths = np.frombuffer(data, "<u4", count=count, offset=first).astype(np.int64)
            at = first + 4 * np.arange(count, dtype=np.int64)
            at = at[(lengths >= 1) & (lengths <= size - at - HEADER_V1.size)]
            ops = np.frombuffer(data, np.uint8, count=hi - lo + HEADER_V1.size, offset=lo)[at - lo + HEADER_V1.size]
            found.append(at[(ops == OP_ADD) | (ops == OP_DELETE)])
        yield from np.sort(np.concatenate(found)).tolist()


def next_intact(data, start, version):
    """The offset of the first intact record at byte `start` or after, or None."""
    if version == 2:
        at = data.find(RECORD_MAGIC, start)
        while at >= 0:
            if _record_at(data, at, 2) is not None:
                return at
            at = data.find(RECORD_MAGIC, at + 1)
        return None
    for at in _candidates_v1(data, start):
        if _record_at(data, int(at), 1) is not None:
            return int(at)
    return None


def _damage_error(path, at, follows, store):
    return StoreCorruptedError(
        f"Gallery store log {path!r} is damaged at byte {at}: the record there cannot be read, and an intact "
        f"record follows at byte {follows}, so this is not a write cut by a crash. The file is left as it was. "
        f"To keep every intact record run `sal-search repair --store={store}` (it keeps a copy of the damaged "
        "log and says what it dropped), or restore the store's folder from a backup."
    )


@dataclasses.dataclass
class LogRead:
    """What `read` found: the log's version, where its intact records end, and the file's size."""

    version: int
    end: int
    size: int


@contextlib.contextmanager
def _mapped(path):
    """The bytes of `path`, memory-mapped read-only (b"" for an empty file)."""
    with open(path, "rb") as f:
        if not os.fstat(f.fileno()).st_size:
            yield b""
            return
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield data
        finally:
            data.close()


def read(path, apply, store=None):
    """Calls `apply(payload)` on every record of the log at `path`, in order.

    Returns a `LogRead`; `end < size` is a torn tail (nothing intact after it) for the caller to
    truncate. Raises `StoreCorruptedError` (the file unchanged) for a bad magic or a damaged record
    with an intact one after it. `store`: the folder named in the message's repair command.
    """
    with _mapped(path) as data:
        size = len(data)
        version = version_of(data[:MAGIC_SIZE])
        if version is None:
            if size >= MAGIC_SIZE or not (MAGIC_V1.startswith(data[:size]) or MAGIC_V2.startswith(data[:size])):
                raise StoreCorruptedError(f"{path!r} does not start with a gallery log header ({MAGIC_V2!r}).")
            return LogRead(2, 0, size)  # a header cut short: an empty log
        at = MAGIC_SIZE
        while at < size:
            record = _record_at(data, at, version)
            if record is None:
                follows = next_intact(data, at + 1, version)
                if follows is not None:
                    raise _damage_error(path, at, follows, store or os.path.dirname(path))
                break
            apply(record[1])
            at = record[0]
        return LogRead(version, at, size)


@dataclasses.dataclass
class Repair:
    """What `repair` kept and dropped: records kept, damaged spans dropped [(start, end)], their bytes."""

    kept: int
    recovered: int
    dropped: list
    version: int

    @property
    def dropped_bytes(self):
        return sum(end - start for start, end in self.dropped)


def _salvage(data, at, end, version):
    """(payload, its end) of a record at `at` whose header alone is damaged: the bytes up to the next
    record magic (version 2) or to `end` that match the CRC in its header; else None."""
    header = HEADER_V1 if version == 1 else HEADER_V2
    if at + header.size >= end:
        return None
    (crc,) = struct.unpack_from("<I", data, at + 4 if version == 1 else at + 8)
    ends = [end]
    if version == 2:
        ends = []
        found = data.find(RECORD_MAGIC, at + header.size + 1, end)
        while found >= 0:
            ends.append(found)
            found = data.find(RECORD_MAGIC, found + 1, end)
        ends.append(end)
    for stop in ends:
        payload = bytes(data[at + header.size : stop])
        if payload[0] in (OP_ADD, OP_DELETE) and zlib.crc32(payload) == crc:
            return payload, stop
    return None


def intact_records(path):
    """(every intact record's payload in order, `Repair` summary) of the log at `path`."""
    with _mapped(path) as data:
        size = len(data)
        version = version_of(data[:MAGIC_SIZE])
        if version is None:
            raise StoreCorruptedError(f"{path!r} does not start with a gallery log header; it cannot be repaired.")
        payloads, dropped, recovered, at = [], [], 0, MAGIC_SIZE
        while at < size:
            record = _record_at(data, at, version)
            if record is not None:
                payloads.append(record[1])
                at = record[0]
                continue
            follows = next_intact(data, at + 1, version)
            end = size if follows is None else follows
            salvaged = _salvage(data, at, end, version)
            if salvaged is not None:
                payloads.append(salvaged[0])
                recovered += 1
                at = salvaged[1]
            else:
                dropped.append((at, end))
                at = end
        return payloads, Repair(len(payloads), recovered, dropped, version)
