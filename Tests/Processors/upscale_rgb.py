#!/usr/bin/env python3
"""Test processor: a 2x model on raw rgb24 frames (each pixel doubled both ways), as a model user writes one:
it knows its scale, not vslice's --process-size. TALK=start prints on stdout before its first frame, TALK=FRAME
after that frame (the mistake the text-on-stdout message is for)."""
import os
import sys

import numpy as np

w, h = int(os.environ["VSLICE_WIDTH"]), int(os.environ["VSLICE_HEIGHT"])
n = w * h * 3
talk = os.environ.get("TALK", "")
src, out = sys.stdin.buffer, sys.stdout.buffer
if talk == "start":
    print("loading model", flush=True)
i = 0
while True:
    b = src.read(n)
    if len(b) < n:
        break
    a = np.frombuffer(b, np.uint8).reshape(h, w, 3)
    out.write(np.repeat(np.repeat(a, 2, 0), 2, 1).tobytes())
    i += 1
    if talk == str(i):
        print(f"{i} frames done", flush=True)
out.flush()
