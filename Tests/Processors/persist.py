#!/usr/bin/env python3
"""Test processor kept loaded (--process-persistent): passes every stream's frames through, one stream back per
stream read (y4m.streams()). Each start appends its pid and VSLICE_CHECK to $PERSIST_STARTS; each stream appends
"stream SEGMENT FRAMES" to $PERSIST_STREAMS. PERSIST_DIE_ONCE=FILE: outside the check, after its first stream the
program kills itself (SIGKILL), once (FILE marks it done). PERSIST_HANG=1: outside the check, it hangs on its first
stream. PERSIST_EXTRA=1: outside the check, it writes each stream's last frame twice (a wrong count, exit 0).
PERSIST_GPUS=FILE: each start appends "check|run VSLICE_GPU CUDA_VISIBLE_DEVICES" ("-" for one not set).
Its arguments are ignored (the tests put a marker there for ps)."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import y4m  # noqa: E402

check = os.environ.get("VSLICE_CHECK") == "1"
if os.environ.get("PERSIST_STARTS"):
    with open(os.environ["PERSIST_STARTS"], "a") as f:
        f.write("%d %s\n" % (os.getpid(), "check" if check else "run"))
if os.environ.get("PERSIST_GPUS"):
    with open(os.environ["PERSIST_GPUS"], "a") as f:
        f.write("%s %s %s\n" % ("check" if check else "run", os.environ.get("VSLICE_GPU", "-"), os.environ.get("CUDA_VISIBLE_DEVICES", "-")))
writer = y4m.Writer()
for stream in y4m.streams():
    if os.environ.get("PERSIST_HANG") and not check:
        time.sleep(3600)
    last = None
    for planes in stream.frames():
        writer.write(stream.header, planes)
        last = planes
    if os.environ.get("PERSIST_EXTRA") and not check and last is not None:
        writer.write(stream.header, last)
    writer.end_stream(stream.header)
    if os.environ.get("PERSIST_STREAMS"):
        with open(os.environ["PERSIST_STREAMS"], "a") as f:
            f.write("stream %d %s\n" % (stream.segment, stream.header.x.get("VSLICE_FRAMES")))
    once = os.environ.get("PERSIST_DIE_ONCE")
    if once and not check and not os.path.exists(once):
        open(once, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
writer.close()
