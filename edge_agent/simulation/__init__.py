"""Simulated lines for the demo, the benchmarks and the tests: never imported by `edge-agent run`.

`runtime/` is what runs beside a real line; this package plays the line's other side (devices on
pseudo-terminals, a parcel mix, a local broker) so that the real agent can be driven end to end.
"""
