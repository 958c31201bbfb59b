"""Test helpers that run real peers: pseudo-terminal simulators and a local mosquitto."""
