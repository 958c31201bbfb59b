"""The exit codes of every `edge-agent` command, defined once (scripts and systemd read them).

0: done, or every check passed. 1: the command ran and what it checked or tried failed (no reply
from a device, a parcel not found, a round trip that did not come back; a doctor warning).
2: refused input (a bad file, config or argument: every EdgeAgentError; a doctor failure).
130: interrupted (Ctrl-C), as the shell reports it.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
