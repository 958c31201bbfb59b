"""A device codec: one port's framer and decoder, and the bytes the agent sends it.

`make_codec(profile)` does all the per-profile work once (framer, decoder, command bytes), so the
hot path is `feed(chunk, now_ns)`: one framer call per chunk, one decoder call per frame. Nothing
here does I/O or reads the clock: the port reader passes the time each chunk was read, and calls
`flush` at `next_deadline_ns()` for idle-gap framing.
"""

from __future__ import annotations

from typing import Protocol

from edge_agent.devices.dws import CubiscanDecoder, DwsDelimitedDecoder
from edge_agent.devices.framers import make_framer
from edge_agent.devices.framing import Counters, Frame
from edge_agent.devices.messages import DecodeError, Message
from edge_agent.devices.profiles import Profile, ProfileError
from edge_agent.devices.scales import (
    AndDecoder,
    MtSicsDecoder,
    NciDecoder,
    SmaDecoder,
    ToledoDecoder,
)
from edge_agent.devices.scanners import ScannerDecoder
from edge_agent.devices.sorter_host import SorterHostDecoder, encode_message
from edge_agent.devices.sorter_protocol import GenericDivertDecoder, encode_divert


class Decoder(Protocol):
    def decode(self, frame: Frame) -> Message: ...


# Clears the parity bit of 7-bit characters read as 8 bits (profile.line.mask_bit7).
MASK_BIT7 = bytes(byte & 0x7F for byte in range(256))

DECODERS = {
    "mt-sics": MtSicsDecoder,
    "toledo": ToledoDecoder,
    "nci": NciDecoder,
    "sma": SmaDecoder,
    "and": AndDecoder,
    "scanner": ScannerDecoder,
    "dws-delimited": DwsDelimitedDecoder,
    "cubiscan": CubiscanDecoder,
    "generic-divert": GenericDivertDecoder,
    "sorter-host": SorterHostDecoder,
}


class DeviceCodec:
    """Bytes from one device in, messages out; counters for the port's health."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.counters = Counters()
        self._framer = make_framer(profile.framing, self.counters)
        if profile.decode.protocol == "sorter-host":  # its header starts with the marker
            self._decoder: Decoder = SorterHostDecoder(
                profile.decode, len(profile.framing.start))  # type: ignore[arg-type, union-attr]
        else:
            self._decoder = DECODERS[profile.decode.protocol](profile.decode)
        self._mask_bit7 = profile.line.mask_bit7

    def feed(self, data: bytes, now_ns: int) -> list[Message]:
        """Messages completed by this chunk, stamped `now_ns` (idle-gap frames: see flush)."""
        if self._mask_bit7:
            data = data.translate(MASK_BIT7)
        frames = self._framer.feed(data, now_ns)
        return [self._decode(frame) for frame in frames] if frames else []

    def flush(self, now_ns: int) -> list[Message]:
        """Idle-gap framing: the frame whose gap has passed, stamped with its last byte's time."""
        frames = self._framer.flush(now_ns)
        return [self._decode(frame) for frame in frames] if frames else []

    def next_deadline_ns(self) -> int | None:
        """When flush() should next be called, or None when no frame is pending."""
        return self._framer.next_deadline_ns()

    def reset(self) -> None:
        """Drop partial frames (after a reconnect); counters are kept."""
        self._framer.reset()

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame; never more than `max_buffer`."""
        return self._framer.buffered

    @property
    def max_buffer(self) -> int:
        return self._framer.max_buffer

    def _decode(self, frame: Frame) -> Message:
        try:
            message = self._decoder.decode(frame)
        except Exception as exc:  # a decoder bug must not stop the port: report the frame
            message = DecodeError(f"decoder failed: {exc!r}", frame.raw, frame.received_ns)
        if isinstance(message, DecodeError):
            self.counters.decode_errors += 1
        return message

    # --- bytes to send, from the profile's data ---

    def poll_request(self) -> bytes | None:
        """The periodic poll (every profile.polling.period_ms), None if the device is not polled."""
        polling = self.profile.polling
        return polling.request if polling.mode == "poll" else None

    def stable_weight_request(self) -> bytes | None:
        """Asks the scale once for a stable weight (MT-SICS `S`, SMA `P`), None if it cannot."""
        return self.profile.polling.stable_request

    def startup_commands(self) -> list[bytes]:
        """Sent once the port is open: start continuous output, scanner trigger on..."""
        return list(self.profile.polling.startup)

    def shutdown_commands(self) -> list[bytes]:
        """Sent before the port closes: stop continuous output, trigger off..."""
        return list(self.profile.polling.shutdown)

    def command(self, name: str) -> bytes:
        """A named command (zero, tare, trigger_on, trigger_off...); ProfileError if unsupported."""
        commands = self.profile.polling.commands
        try:
            return commands[name]
        except KeyError:
            have = ", ".join(sorted(commands)) or "none"
            raise ProfileError(
                self.profile.name, [f"polling.commands: no command {name!r} (has: {have})"]
            ) from None

    def lane_command(self, parcel_id: str, bin: int, barcode: str | None = None) -> bytes:
        """The sorter's divert command; ProfileError for a non-sorter profile, ValueError for an
        id or bin the protocol cannot carry."""
        if self.profile.decode.protocol != "generic-divert":
            raise ProfileError(
                self.profile.name, [f"kind: a {self.profile.kind} takes no lane commands"
                                    if self.profile.kind != "sorter" else
                                    "decode.protocol: a sorter-driven profile asks, it takes no "
                                    "lane commands"]
            )
        return encode_divert(parcel_id, bin, barcode)


    @property
    def sorter_driven(self) -> bool:
        """True for a sorter that tracks parcels and asks for destinations (sorter-host)."""
        return self.profile.decode.protocol == "sorter-host"

    def host_message(self, kind: int, seq: int, body: dict | None = None) -> bytes:
        """A sorter-host message (edge_agent.devices.sorter_host); ProfileError otherwise."""
        if not self.sorter_driven:
            raise ProfileError(self.profile.name, ["decode.protocol: not a sorter-host profile"])
        return encode_message(self.profile.framing.start,  # type: ignore[union-attr]
                              self.profile.decode.version, kind, seq, body)  # type: ignore[union-attr]


def make_codec(profile: Profile) -> DeviceCodec:
    return DeviceCodec(profile)
