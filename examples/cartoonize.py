#!/usr/bin/env python3
"""A cartoonizer for vslice (the design documents' Cartoonizer, with OpenCV): flat colours and dark edges.

Reads and writes raw RGB frames (vslice's --process-format rgb24); the size comes from vslice's environment:

    vslice transcode in.mp4 -o out.mp4 --process 'python3 examples/cartoonize.py' --process-format rgb24

Each frame on its own (no buffers needed). Settings by environment: CARTOON_LEVELS (colours per channel,
default 8), CARTOON_EDGE (edge block size, odd, default 9).
"""
import os
import sys

import cv2
import numpy as np

# vslice runs several segments at once: use this segment's share of the cores, not all of them.
if "VSLICE_THREADS" in os.environ:
    cv2.setNumThreads(int(os.environ["VSLICE_THREADS"]))
W = int(os.environ["VSLICE_WIDTH"])
H = int(os.environ["VSLICE_HEIGHT"])
LEVELS = int(os.environ.get("CARTOON_LEVELS", "8"))
EDGE = int(os.environ.get("CARTOON_EDGE", "9"))


def cartoon(rgb):
    smooth = cv2.bilateralFilter(rgb, 9, 75, 75)
    step = 256 // LEVELS
    flat = (smooth // step) * step + step // 2
    gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, EDGE, 2)
    return cv2.bitwise_and(flat.astype(np.uint8), flat.astype(np.uint8), mask=edges)


def main():
    size = W * H * 3
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    while True:
        data = src.read(size)
        if not data:
            break
        if len(data) < size:
            sys.exit("cartoonize.py: input ended inside a frame")
        frame = np.frombuffer(data, dtype=np.uint8).reshape(H, W, 3)
        dst.write(cartoon(frame).tobytes())
    dst.flush()


if __name__ == "__main__":
    main()
