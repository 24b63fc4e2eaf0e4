"""Reading and writing YUV4MPEG2 (Y4M) streams, for vslice processors (`vslice transcode --process ...`).

vslice writes a segment's frames to the processor's stdin as Y4M and reads Y4M back from its stdout: one
header line, then per frame a `FRAME` line and the planes (Y, then U and V, or just Y for mono), row after row,
no padding. Samples above 8 bits are 16-bit little-endian words. Copy this file beside your processor.

A processor that stays loaded (`--process-persistent`) reads several streams on the same stdin, one per
segment, each with its own header carrying XVSLICE_SEGMENT=i and XVSLICE_FRAMES=n; for each it writes one
stream back, all of that segment's frames, before it reads the next header. `streams()` reads them, and a
processor written as a loop over `streams()` runs either way (without --process-persistent its input is one
stream, ended by the end of input):

    writer = y4m.Writer()
    for stream in y4m.streams():
        for planes in stream.frames():
            writer.write(stream.header, work(planes))
        writer.end_stream()
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
        # The X fields (XVSLICE_SEGMENT=3 -> x["VSLICE_SEGMENT"] = "3").
        self.x = dict(f[1:].split("=", 1) for f in self.fields if f[0] == "X" and "=" in f)
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

    def frame_count(self):
        """The frames of this stream as vslice's header says (XVSLICE_FRAMES), or None (until the end of input)."""
        n = self.x.get("VSLICE_FRAMES")
        return int(n) if n is not None else None

    def line(self):
        """The header line with the current width, height, rate and chroma (other fields kept, vslice's own
        XVSLICE_ fields dropped: they describe its input)."""
        out = ["YUV4MPEG2"]
        for f in self.fields:
            if f[0] not in "WHFC" and not f.startswith("XVSLICE_"):
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


def _layout(header):
    """The planes' shapes, the sample type and a frame's size in bytes (taken once: a caller may change the header)."""
    shapes, dtype = header.plane_shapes(), header.dtype()
    return shapes, dtype, sum(r * c for r, c in shapes) * np.dtype(dtype).itemsize


def _read_frame(stream, layout):
    """The next frame's planes (after its FRAME line), or None at the end of input."""
    tag = _read_line(stream)
    if tag is None:
        return None
    if not tag.startswith("FRAME"):
        raise ValueError("expected FRAME, got %r" % tag[:20])
    shapes, dtype, size = layout
    data = stream.read(size)
    if len(data) < size:
        raise ValueError("stream ended inside a frame")
    flat = np.frombuffer(data, dtype=dtype)
    planes, at = [], 0
    for r, c in shapes:
        planes.append(flat[at:at + r * c].reshape(r, c))
        at += r * c
    return planes


def frames(stream=None):
    """Yields (header, planes) for each frame of a Y4M stream: planes is a list of 2-D numpy arrays."""
    stream = stream or sys.stdin.buffer
    first = _read_line(stream)
    if first is None:
        return
    header = Header(first)
    layout = _layout(header)
    while True:
        planes = _read_frame(stream, layout)
        if planes is None:
            return
        yield header, planes


class Stream:
    """One stream of several on the same input: its header, and its frames (`frames()`)."""

    def __init__(self, source, header):
        self.source = source
        self.header = header
        self.count = header.frame_count()
        self.read = 0
        # vslice's segment (XVSLICE_SEGMENT), and its buffer frames before and after the kept ones.
        self.segment = int(header.x.get("VSLICE_SEGMENT", "0"))
        self.buffer_before = int(header.x.get("VSLICE_BUFFER_BEFORE", "0"))
        self.buffer_after = int(header.x.get("VSLICE_BUFFER_AFTER", "0"))
        self.layout = _layout(header)

    def frames(self):
        """Yields the planes of each frame: XVSLICE_FRAMES of them when the header says so, else until the end
        of input. Read them all before the next stream."""
        while self.count is None or self.read < self.count:
            planes = _read_frame(self.source, self.layout)
            if planes is None:
                if self.count is not None:
                    raise ValueError("input ended after %d of the stream's %d frames" % (self.read, self.count))
                return
            self.read += 1
            yield planes


def streams(source=None):
    """Yields each Y4M stream of the input in turn (a `Stream`), until the input ends where a header would be."""
    source = source or sys.stdin.buffer
    while True:
        first = _read_line(source)
        if first is None:
            return
        s = Stream(source, Header(first))
        yield s
        for _ in s.frames():   # what the caller left unread of this stream
            pass
        if s.count is None:
            return


class Writer:
    """Writes frames to a Y4M stream: the header before the first. With several streams (one per segment),
    `end_stream()` after each one's last frame: it flushes, and the next frame starts a new stream."""

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

    def end_stream(self, header=None):
        """Ends this stream (a stream of no frame still gets its header, when given) and flushes it."""
        if not self.started and header is not None:
            self.stream.write(header.line().encode("ascii"))
        self.started = False
        self.stream.flush()

    def close(self):
        self.stream.flush()
