"""Sorting core: identifiers, destinations, manifest, rules, pairing and decisions."""
