"""Device layer: firmware profiles, framing, decoding, port supervision and simulators."""
