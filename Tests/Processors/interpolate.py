#!/usr/bin/env python3
"""Test processor: a 2x frame interpolator (each frame, then OpenCV's blend of it and the next), Y4M in and out.

Its header says twice the input's rate; the last frame is followed by a copy of itself.
"""
import os
import sys

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import y4m  # noqa: E402

writer = y4m.Writer()
previous = None
header = None
for header, planes in y4m.frames():
    if previous is None:
        header.rate = (header.rate[0] * 2, header.rate[1])
    if previous is not None:
        writer.write(header, previous)
        writer.write(header, [cv2.addWeighted(a, 0.5, b, 0.5, 0) for a, b in zip(previous, planes)])
    previous = planes
if previous is not None:
    writer.write(header, previous)
    writer.write(header, previous)
writer.close()
