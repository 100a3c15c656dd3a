"""The folder store's embedding matrix: float32 rows in an anonymous memory map that grows in place.

A numpy matrix grown by allocating a larger one and copying holds the old and the new matrix at
once, and writes zeros into the whole new capacity: at 1.5× growth a 10 M × 128-d gallery (4.8 GiB
of rows) peaks near 8 GiB for the matrix alone while it is being filled (issue 29's 10 M goal:
≤ 8 GiB for the whole process). Here the rows live in an anonymous `mmap` that `mmap.resize`
grows with the kernel's mremap: the pages move, nothing is copied, and capacity not yet written
takes no memory. When that cannot be done (a view of the old matrix is still alive — `mmap`
refuses with BufferError — or the platform has no mremap) the matrix is copied into a new map, as
before. `load_npy` reads a snapshot's matrix straight into the map (no second copy at open).

The store reads and writes `RowMatrix.array`; it must hold no other view of it while `grow` runs
(the store grows the matrix under its writer lock, when no search holds a view).
"""

import mmap

import numpy as np

ITEM = 4  # bytes of a float32
READ_CHUNK = 64 << 20  # bytes read from a snapshot at a time


def _anonymous(nbytes):
    # private: a shared anonymous map is a shmem file that mremap does not grow (writing past the old
    # size is a SIGBUS)
    return mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)


class RowMatrix:
    """A float32 [capacity, dim] matrix (`array`) backed by an anonymous memory map (module docstring)."""

    def __init__(self, dim, capacity=0):
        self.dim = int(dim)
        self._map = None
        self.array = np.zeros((0, self.dim), np.float32)
        if capacity:
            self.grow(capacity, 0)

    @property
    def capacity(self):
        return len(self.array)

    def _view(self, capacity):
        if self._map is None:
            return np.zeros((0, self.dim), np.float32)
        return np.frombuffer(self._map, np.float32, count=capacity * self.dim).reshape(capacity, self.dim)

    def grow(self, capacity, rows):
        """Makes room for `capacity` rows, keeping the first `rows`; new rows read as zeros."""
        nbytes = capacity * self.dim * ITEM
        if capacity <= self.capacity or not nbytes:
            return
        self.array = None  # this object's own view: mmap cannot resize while a view of it exists
        try:
            if self._map is None:
                self._map = _anonymous(nbytes)
            else:
                self._map.resize(nbytes)
        except (BufferError, OSError, SystemError, ValueError):
            old = self._view(len(self._map) // (self.dim * ITEM))
            self._map = _anonymous(nbytes)
            self._view(capacity)[:rows] = old[:rows]
        self.array = self._view(capacity)

    def load_npy(self, member, path):
        """Fills the matrix from the .npy stream `member` (a float32 [n, dim] C-order array, e.g. a
        member of a snapshot's zip, which checks its CRC-32 as it is read to the end) and returns n.
        ValueError when the stream holds anything else (`path` names the file)."""
        version = np.lib.format.read_magic(member)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(member)
        if dtype != np.dtype("<f4") or fortran or len(shape) != 2 or shape[1] != self.dim:
            raise ValueError(f"{path!r}: the vectors are {dtype} {shape}; expected float32 [n, {self.dim}]")
        self.grow(shape[0], 0)
        with memoryview(self._map) as view:
            at, end = 0, shape[0] * self.dim * ITEM
            while at < end:
                got = member.readinto(view[at : min(end, at + READ_CHUNK)])
                if not got:
                    raise ValueError(f"{path!r}: the vectors end after {at} of {end} bytes")
                at += got
        if member.read(1):
            raise ValueError(f"{path!r}: bytes follow the vectors")
        return shape[0]
