#!/usr/bin/env python3
"""--reduce for the context tests: the artifacts (paths in order) hold every frame's luma sum; writes the whole
video's mean luma modulo 40. Refuses artifacts that do not cover frames 0…N-1 in order. VSLICE_TEST_REDUCE_LOG:
a log it appends a line to."""
import os
import sys

log = os.environ.get("VSLICE_TEST_REDUCE_LOG")
if log:
    with open(log, "a") as f:
        f.write("reduce\n")
total = samples = 0
expected = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            index, s, n = (int(v) for v in line.split())
            if index != expected:
                sys.exit(f"frame {index} where {expected} was expected ({path})")
            expected += 1
            total += s
            samples += n
print((total // samples) % 40)
