"""Units the code counts in, named once.

Arrival times are time.monotonic_ns() integers (see devices/port.py: a chunk is stamped the
moment it is read), so durations are nanoseconds and are converted only at the edges: config
and reports in milliseconds or seconds, sizes in MiB.
"""

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
MIB = 1024 * 1024
