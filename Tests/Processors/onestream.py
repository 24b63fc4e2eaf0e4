#!/usr/bin/env python3
"""Test processor that reads one Y4M stream only (y4m.frames(), each frame passed through and flushed at once): it
cannot take a second header, so --process-persistent must refuse it before any work."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import y4m  # noqa: E402

writer = y4m.Writer()
for header, planes in y4m.frames():
    writer.write(header, planes)
    sys.stdout.buffer.flush()
writer.close()
