#!/usr/bin/env python3
"""A temporal denoiser for vslice: OpenCV's non-local means over a window of frames (cv2.fastNlMeansDenoisingMulti).

Each frame is denoised with the frames around it (WINDOW frames, centred), so a segment's first and last
frames need their neighbours: give vslice buffers of WINDOW // 2 frames on each side, and the segments join
as if the whole video had been denoised in one run:

    vslice transcode in.mp4 -o out.mp4 --process 'python3 examples/denoise.py' --overlap 2,2
    vslice transcode in.mp4 -o out.mp4 --process 'python3 examples/denoise.py' --overlap 2,2 --process-persistent

The second keeps one program per job slot, reading one stream per segment (y4m.streams()). Reads and writes Y4M (vslice's default --process-format), 8-bit: each plane is denoised on its own.
Settings by environment: DENOISE_WINDOW (odd, default 5), DENOISE_STRENGTH (default 6),
DENOISE_SEARCH (search window, default 11).
"""
import os
import sys
from collections import deque

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import y4m  # noqa: E402

# vslice runs several segments at once: use this segment's share of the cores, not all of them.
if "VSLICE_THREADS" in os.environ:
    cv2.setNumThreads(int(os.environ["VSLICE_THREADS"]))
WINDOW = int(os.environ.get("DENOISE_WINDOW", "5"))
STRENGTH = float(os.environ.get("DENOISE_STRENGTH", "6"))
SEARCH = int(os.environ.get("DENOISE_SEARCH", "11"))


def denoise(frames, k, header):
    """Frame k of `frames` (a list of plane lists), denoised with up to WINDOW // 2 neighbours each side."""
    half = min(WINDOW // 2, k, len(frames) - 1 - k)
    out = []
    for p in range(len(frames[k])):
        stack = [f[p] for f in frames[k - half:k + half + 1]]
        if half == 0:
            out.append(cv2.fastNlMeansDenoising(stack[0], None, STRENGTH, 7, SEARCH))
        else:
            out.append(cv2.fastNlMeansDenoisingMulti(stack, half, 2 * half + 1, None, STRENGTH, 7, SEARCH))
    return out


def run(header, frames, writer):
    """Denoises one stream's frames (a segment's, buffer frames included) and writes them."""
    half = WINDOW // 2
    window = deque()   # the frames around the next one to write
    done = 0           # frames written
    seen = 0
    for planes in frames:
        window.append(planes)
        seen += 1
        # Frame `done` has its following neighbours once `half` more frames have come.
        if seen - done > half:
            k = done - (seen - len(window))
            writer.write(header, denoise(list(window), k, header))
            done += 1
            while len(window) > 2 * half + 1 or (len(window) > 0 and done - (seen - len(window)) > half):
                window.popleft()
    # The last frames: fewer neighbours after them, as at the end of the whole video.
    while done < seen:
        k = done - (seen - len(window))
        writer.write(header, denoise(list(window), k, header))
        done += 1
        while len(window) > 0 and done - (seen - len(window)) > half:
            window.popleft()


def main():
    writer = y4m.Writer()
    # One stream per segment with --process-persistent (its header says how many frames, so the last ones are
    # written without waiting for more input); else one stream until the end of input.
    for stream in y4m.streams():
        if y4m.CHROMA[stream.header.chroma][2] != 8:
            sys.exit("denoise.py: 8-bit input only (got C%s)" % stream.header.chroma)
        run(stream.header, stream.frames(), writer)
        writer.end_stream(stream.header)
    writer.close()


if __name__ == "__main__":
    main()
