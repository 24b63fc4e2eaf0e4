#!/usr/bin/env python3
"""Test processor: puts out 321x181 RGB frames (OpenCV's resize), a size a 4:2:0 encoder cannot take."""
import os
import sys

import cv2
import numpy as np

w, h = int(os.environ["VSLICE_WIDTH"]), int(os.environ["VSLICE_HEIGHT"])
size = w * h * 3
while True:
    data = sys.stdin.buffer.read(size)
    if len(data) < size:
        break
    frame = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
    sys.stdout.buffer.write(cv2.resize(frame, (321, 181)).tobytes())
sys.stdout.buffer.flush()
