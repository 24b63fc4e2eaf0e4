#!/usr/bin/env python3
"""Test processor: a 2x upscaler (OpenCV's bicubic resize of every plane), Y4M in and out."""
import os
import sys

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import y4m  # noqa: E402

writer = y4m.Writer()
for header, planes in y4m.frames():
    out = [cv2.resize(p, (p.shape[1] * 2, p.shape[0] * 2), interpolation=cv2.INTER_CUBIC) for p in planes]
    header.width, header.height = header.width * 2, header.height * 2
    writer.write(header, out)
writer.close()
