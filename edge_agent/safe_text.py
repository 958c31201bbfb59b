"""Text from devices and the network made safe to print, and values cut for messages.

A barcode, a raw frame, a rules version or an alarm text comes from a scanner, a label or the
broker: printed raw, `ESC ] 0 ; ... BEL` retitles a technician's terminal and `ESC [ 2 J`
clears it. Every view passes such strings through `terminal_safe`, which shows each control or
otherwise invisible character as an escape (`\\x1b`), so the technician sees what was sent.
"""

from __future__ import annotations

# A value quoted in an error message is cut to this many characters: enough to recognise it,
# never a 50 MB barcode echoed to the terminal.
SHOWN_CHARS = 60


def terminal_safe(text: str) -> str:
    """`text` with every non-printable character (C0/C1 controls, DEL, format characters such
    as bidi overrides) written as `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`."""
    if text.isprintable():  # the common case, one C-level scan
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def cut(text: str, limit: int = 4 * SHOWN_CHARS) -> str:
    """A message (an exception's text may quote a whole input) made terminal-safe and cut."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    return terminal_safe(text)


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value for an error message: quoted like repr, made terminal-safe, cut to `limit`
    characters with the full length said (`'LP000…' (52,428,800 characters)`)."""
    if isinstance(value, bytes | bytearray):
        if len(value) <= limit // 2:
            return value.hex(" ")
        return f"{bytes(value[: limit // 2]).hex(' ')}… ({len(value):,} bytes)"
    if not isinstance(value, str):
        text = repr(value)
        return terminal_safe(text if len(text) <= limit else text[:limit] + "…")
    if len(value) <= limit:
        return terminal_safe(repr(value))
    quoted = terminal_safe(repr(value[:limit]))
    return f"{quoted[:-1]}…{quoted[-1]} ({len(value):,} characters)"
