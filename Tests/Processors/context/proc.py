#!/usr/bin/env python3
"""--process for the context tests: Y' = Y/2 + plate/4 + K, where K is the reduced result ($VSLICE_CONTEXT) and
plate the mean luma of the context frames it gets first ($VSLICE_CONTEXT_FRAMES of them); chroma as it came.
Writes the context frames it received to $VSLICE_TEST_DUMP/lead-SEGMENT.y4m, and checks that its segment's
artifact ($VSLICE_SEGMENT_ARTIFACT) starts at its first frame."""
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

check = os.environ.get("VSLICE_CHECK")
k = 0
if not check and "VSLICE_CONTEXT" in os.environ:
    k = int(open(os.environ["VSLICE_CONTEXT"]).read().strip())
lead = int(os.environ.get("VSLICE_CONTEXT_FRAMES", "0"))
artifact = os.environ.get("VSLICE_SEGMENT_ARTIFACT")
if not check and artifact:
    first = int(open(artifact).readline().split()[0])
    if first != int(os.environ.get("VSLICE_FIRST_FRAME", "0")):
        sys.exit(f"artifact {artifact} starts at frame {first}")
stream = frames(sys.stdin.buffer)
header, width, height = next(stream)
out = sys.stdout.buffer
out.write(header.encode())
held = []
plate = None
dump = None
if lead and not check and os.environ.get("VSLICE_TEST_DUMP"):
    dump = open(os.path.join(os.environ["VSLICE_TEST_DUMP"], "lead-" + os.environ.get("VSLICE_SEGMENT", "whole") + ".y4m"), "wb")
    dump.write(header.encode())
for i, frame in enumerate(stream):
    y = np.frombuffer(frame, dtype=np.uint8, count=width * height).astype(np.int32)
    if i < lead:
        held.append(y)
        if dump:
            dump.write(b"FRAME\n" + frame)
    if plate is None and i >= lead - 1:
        plate = (np.mean(np.stack(held), axis=0).astype(np.int32) if held else np.zeros_like(y))
        if dump:
            dump.close()
    if plate is None:
        out.write(b"FRAME\n" + frame)  # a lead frame before the plate is known: its output is dropped anyway
        continue
    new = np.clip(y // 2 + plate // 4 + k, 0, 255).astype(np.uint8)
    out.write(b"FRAME\n" + new.tobytes() + frame[width * height:])
