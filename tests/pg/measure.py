#!/usr/bin/python3
"""measure.py OUT ERR CMD...: runs CMD with stdout and stderr in the files OUT and ERR, and prints
"EXIT_STATUS PEAK_RSS_KB SECONDS" (peak resident memory of the command, from getrusage)."""
import resource
import subprocess
import sys
import time

out_path, err_path, command = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out_path, "wb") as out, open(err_path, "wb") as err:
    started = time.monotonic()
    status = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err).returncode
    seconds = time.monotonic() - started
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "%.3f" % seconds)
