#!/usr/bin/env python3
"""A cartoonizer for vslice (the design documents' Cartoonizer, with OpenCV): flat colours and dark edges.

Reads and writes raw RGB frames (vslice's --process-format rgb24; the size comes from vslice's environment), or
Y4M (8-bit 4:2:0, converted to RGB and back with OpenCV), which is also its form kept loaded: one program per job
slot, one stream per segment (y4m.streams()):

    vslice transcode in.mp4 -o out.mp4 --process 'python3 examples/cartoonize.py' --process-format rgb24
    vslice transcode in.mp4 -o out.mp4 --process 'python3 examples/cartoonize.py' --process-persistent

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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import y4m  # noqa: E402

LEVELS = int(os.environ.get("CARTOON_LEVELS", "8"))
EDGE = int(os.environ.get("CARTOON_EDGE", "9"))


def cartoon(rgb):
    smooth = cv2.bilateralFilter(rgb, 9, 75, 75)
    step = 256 // LEVELS
    flat = (smooth // step) * step + step // 2
    gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, EDGE, 2)
    return cv2.bitwise_and(flat.astype(np.uint8), flat.astype(np.uint8), mask=edges)


def raw_rgb():
    w, h = int(os.environ["VSLICE_WIDTH"]), int(os.environ["VSLICE_HEIGHT"])
    size = w * h * 3
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    while True:
        data = src.read(size)
        if not data:
            break
        if len(data) < size:
            sys.exit("cartoonize.py: input ended inside a frame")
        frame = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
        dst.write(cartoon(frame).tobytes())
    dst.flush()


def y4m_streams():
    writer = y4m.Writer()
    for stream in y4m.streams():
        h = stream.header
        if h.chroma not in ("420jpeg", "420mpeg2", "420paldv", "420") or h.width % 2 or h.height % 2:
            sys.exit("cartoonize.py: y4m takes 8-bit 4:2:0 with even sides (got %dx%d C%s)" % (h.width, h.height, h.chroma))
        for y, u, v in stream.frames():
            i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h.height * 3 // 2, h.width)
            out = cv2.cvtColor(cartoon(cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)), cv2.COLOR_RGB2YUV_I420).ravel()
            q = (h.height // 2) * (h.width // 2)
            luma = h.height * h.width
            writer.write(h, [out[:luma].reshape(h.height, h.width), out[luma:luma + q].reshape(h.height // 2, h.width // 2),
                             out[luma + q:].reshape(h.height // 2, h.width // 2)])
        writer.end_stream(h)


def main():
    if os.environ.get("VSLICE_FORMAT", "rgb24") == "y4m":
        y4m_streams()
    else:
        raw_rgb()


if __name__ == "__main__":
    main()
