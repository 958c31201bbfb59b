"""Sync: durable outbox, MQTT client, topics, payload models and commands from central."""
