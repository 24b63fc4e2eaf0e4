"""Reading and writing YUV4MPEG2 (Y4M) streams, for vslice processors (`vslice transcode --process ...`).

vslice writes a segment's frames to the processor's stdin as Y4M and reads Y4M back from its stdout: one
header line, then per frame a `FRAME` line and the planes (Y, then U and V, or just Y for mono), row after row,
no padding. Samples above 8 bits are 16-bit little-endian words. Copy this file beside your processor.
"""
import sys

import numpy as np

# Chroma tag -> (horizontal, vertical) chroma subsampling, bits per sample.
CHROMA = {
    "420jpeg": (2, 2, 8), "420mpeg2": (2, 2, 8), "420paldv": (2, 2, 8), "420": (2, 2, 8), "411": (4, 1, 8),
    "422": (2, 1, 8), "444": (1, 1, 8), "mono": (0, 0, 8),
    "420p10": (2, 2, 10), "422p10": (2, 1, 10), "444p10": (1, 1, 10), "mono10": (0, 0, 10),
    "420p12": (2, 2, 12), "422p12": (2, 1, 12), "444p12": (1, 1, 12), "mono12": (0, 0, 12),
    "420p16": (2, 2, 16), "422p16": (2, 1, 16), "444p16": (1, 1, 16), "mono16": (0, 0, 16),
}


class Header:
    """A stream header: width, height, rate (num, den), chroma tag, and the other fields as given."""

    def __init__(self, line):
        fields = line.split()
        if not fields or fields[0] != "YUV4MPEG2":
            raise ValueError("not a YUV4MPEG2 stream")
        self.fields = fields[1:]
        self.width = self.height = 0
        self.rate = (25, 1)
        self.chroma = "420jpeg"
        for f in self.fields:
            if f[0] == "W":
                self.width = int(f[1:])
            elif f[0] == "H":
                self.height = int(f[1:])
            elif f[0] == "F":
                n, d = f[1:].split(":")
                self.rate = (int(n), int(d))
            elif f[0] == "C":
                self.chroma = f[1:]
        if self.chroma not in CHROMA:
            raise ValueError("unsupported chroma " + self.chroma)

    def line(self):
        """The header line with the current width, height, rate and chroma (other fields kept)."""
        out = ["YUV4MPEG2"]
        for f in self.fields:
            if f[0] not in "WHFC":
                out.append(f)
        out += ["W%d" % self.width, "H%d" % self.height, "F%d:%d" % self.rate, "C" + self.chroma]
        return " ".join(out) + "\n"

    def plane_shapes(self):
        """(rows, columns) of each plane."""
        sx, sy, _ = CHROMA[self.chroma]
        shapes = [(self.height, self.width)]
        if sx:
            c = (-(-self.height // sy), -(-self.width // sx))
            shapes += [c, c]
        return shapes

    def dtype(self):
        return np.uint8 if CHROMA[self.chroma][2] == 8 else np.dtype("<u2")


def _read_line(stream):
    line = stream.readline(1024)
    return line.decode("ascii").rstrip("\n") if line else None


def frames(stream=None):
    """Yields (header, planes) for each frame of a Y4M stream: planes is a list of 2-D numpy arrays."""
    stream = stream or sys.stdin.buffer
    first = _read_line(stream)
    if first is None:
        return
    header = Header(first)
    shapes, dtype = header.plane_shapes(), header.dtype()
    size = sum(r * c for r, c in shapes) * np.dtype(dtype).itemsize
    while True:
        tag = _read_line(stream)
        if tag is None:
            return
        if not tag.startswith("FRAME"):
            raise ValueError("expected FRAME, got %r" % tag[:20])
        data = stream.read(size)
        if len(data) < size:
            raise ValueError("stream ended inside a frame")
        flat = np.frombuffer(data, dtype=dtype)
        planes, at = [], 0
        for r, c in shapes:
            planes.append(flat[at:at + r * c].reshape(r, c))
            at += r * c
        yield header, planes


class Writer:
    """Writes frames to a Y4M stream: the header before the first."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout.buffer
        self.started = False

    def write(self, header, planes):
        if not self.started:
            self.stream.write(header.line().encode("ascii"))
            self.started = True
        self.stream.write(b"FRAME\n")
        for p in planes:
            self.stream.write(np.ascontiguousarray(p, dtype=header.dtype()).tobytes())

    def close(self):
        self.stream.flush()
