#!/usr/bin/env python3
"""--analyze for the context tests: reads a segment's Y4M frames (buffer frames included) and writes, for each
kept frame, its source index and the sum of its luma samples. VSLICE_TEST_ANALYZE_LOG: a log it appends the
segment's number to."""
import os
import sys

import numpy as np


def frames(stream):
    """Header fields, then each frame's bytes, of an 8-bit 4:2:0 YUV4MPEG2 stream."""
    header = stream.readline().decode()
    fields = header.split()
    width = int(next(f[1:] for f in fields if f[0] == "W"))
    height = int(next(f[1:] for f in fields if f[0] == "H"))
    size = width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    yield header, width, height
    while True:
        line = stream.readline()
        if not line:
            return
        data = stream.read(size)
        if len(data) < size:
            raise SystemExit("a frame cut short")
        yield data

if os.environ.get("VSLICE_TEST_ANALYZE_LOG"):
    with open(os.environ["VSLICE_TEST_ANALYZE_LOG"], "a") as log:
        log.write(os.environ.get("VSLICE_SEGMENT", "whole") + "\n")
first = int(os.environ.get("VSLICE_FIRST_FRAME", "0"))
before = int(os.environ.get("VSLICE_BUFFER_BEFORE", "0"))
count = int(os.environ["VSLICE_FRAMES"]) if "VSLICE_FRAMES" in os.environ else None
stream = frames(sys.stdin.buffer)
_, width, height = next(stream)
out = sys.stdout
for i, frame in enumerate(stream):
    kept = i - before
    if kept < 0 or (count is not None and kept >= count):
        continue
    luma = np.frombuffer(frame, dtype=np.uint8, count=width * height)
    out.write(f"{first + kept} {int(luma.sum(dtype=np.int64))} {luma.size}\n")
