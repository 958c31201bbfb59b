"""JSON Schemas and the AsyncAPI 3.0 document, generated from the payload models.

Central teams read docs/asyncapi.yaml; a test regenerates it and fails if the committed copy is
out of date, so the contract cannot drift from the code. The YAML is written as JSON (JSON is
valid YAML 1.2), which needs no YAML library on the device and is byte-for-byte deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from edge_agent.sync import payloads as p

SCHEMA_BASE_URI = "https://schemas.edge-agent.invalid/sortline/v1/"
ADDRESS_PREFIX = "sortline/v1/{site}/{line}/"

# (channel id, address under the prefix, message model, description)
CHANNELS: list[tuple[str, str, type, str]] = [
    ("status", "status", p.Status,
     "Retained. online with versions and start time; the last will (and a clean stop) say "
     "offline."),
    ("parcelEvents", "events/parcel", p.ParcelEvent,
     "QoS 1, one per decision, at least once: de-duplicate on event_id, detect gaps by seq."),
    ("outcomeEvents", "events/outcome", p.OutcomeEvent,
     "QoS 1, at least once, same ids as events: exactly one outcome per decided parcel of a "
     "line with a sorter (sorted, too late, bin full, recirculated... or no_confirmation), "
     "after its decision; join to events/parcel on parcel_id."),
    ("alarmEvents", "events/alarm", p.AlarmEvent, "QoS 1, at least once, same ids as events."),
    ("telemetry", "telemetry", p.Telemetry,
     "QoS 1, periodic counters, outbox depth and age, device and lane states."),
    ("deviceState", "devices/{device}/state", p.DeviceState,
     "Retained, one topic per device, true only while the agent runs: MQTT v5 message expiry "
     "(mqtt.device_state_ttl_s, 60 s; renewed every third of it) and expires_at in the "
     "payload."),
    ("command", "cmd/{command}", p.CommandRequest,
     "Commands from central: rules.apply, manifest.upsert, manifest.remove, lanes.set, "
     "holds.put, holds.lift, "
     "status.get, ping. MQTT v5: set a response topic under reply/ and correlation data. "
     "Never retained (a retained command is refused); issued_at required, expires_at "
     "optional (default +60 s, at most +3600 s), 30 s clock tolerance; ids are kept on disk, "
     "so a copy is never acted on twice, also after a restart. At most 512 KiB, 16 levels "
     "of nesting, 50,000 JSON values (docs/MQTT.md, Commands)."),
    ("reply", "reply/{command}", p.CommandReply,
     "Replies. MQTT v5: on the request's response topic (under reply/) with its correlation "
     "data; MQTT 3.1.1: on reply/{command}, matched by id."),
]
PARAMETERS = {
    "site": "Site id from the agent's config",
    "line": "Line id from the agent's config",
    "device": "Device name from the agent's config",
    "command": "Command name",
}
# (operation id, action from the agent's point of view, channel, qos, retained)
OPERATIONS = [
    ("publishStatus", "send", "status", 1, True),
    ("publishParcelEvent", "send", "parcelEvents", 1, False),
    ("publishOutcomeEvent", "send", "outcomeEvents", 1, False),
    ("publishAlarmEvent", "send", "alarmEvents", 1, False),
    ("publishTelemetry", "send", "telemetry", 1, False),
    ("publishDeviceState", "send", "deviceState", 1, True),
    ("receiveCommand", "receive", "command", 1, False),
]


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema per published model, by file stem."""
    schemas = {}
    for stem, model in p.PUBLISHED_MODELS.items():
        schema = model.model_json_schema()
        schemas[stem] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_BASE_URI}{stem}.json",
            **schema,
        }
    return schemas


def _components_schemas() -> dict[str, Any]:
    models = [(model, "validation") for model in p.PUBLISHED_MODELS.values()]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    return dict(sorted(top.get("$defs", {}).items()))


def asyncapi_document(version: str = f"{p.SCHEMA_VERSION}.0.0") -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel_id, address, model, description in CHANNELS:
        full = ADDRESS_PREFIX + address
        messages[model.__name__] = {
            "name": model.__name__,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
        channels[channel_id] = {
            "address": full,
            "description": description,
            "parameters": {
                name: {"description": text}
                for name, text in PARAMETERS.items()
                if "{" + name + "}" in full
            },
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
    operations: dict[str, Any] = {}
    for operation_id, action, channel_id, qos, retain in OPERATIONS:
        operation: dict[str, Any] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "bindings": {"mqtt": {"qos": qos, "retain": retain}},
        }
        if channel_id == "command":
            operation["reply"] = {"channel": {"$ref": "#/channels/reply"}}
        operations[operation_id] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "edge-agent sorting line",
            "version": version,
            "description": "What one sorting-line agent publishes and accepts. Topics are under "
            "the configurable prefix sortline/v1/{site}/{line}/. Contract details (delivery, "
            "ids, power cuts): docs/MQTT.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "site-broker": {
                "host": "broker.example:8883",
                "protocol": "mqtts",
                "protocolVersion": "5.0",
                "description": "Any MQTT 3.1.1/5 broker; TLS with client certificates.",
                "security": [{"$ref": "#/components/securitySchemes/clientCertificate"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": _components_schemas(),
            "securitySchemes": {
                "clientCertificate": {
                    "type": "X509",
                    "description": "The certificate's CN is SITE/LINE for agents; central "
                    "systems have one identity per consumer, dashboards read-only (see "
                    "deploy/mosquitto/edge-agent.acl).",
                }
            },
        },
    }


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render_asyncapi_yaml() -> str:
    header = "# Generated by `edge-agent schema --out docs`: do not edit (JSON is valid YAML).\n"
    return header + render_json(asyncapi_document())


def write_all(out_dir: Path) -> list[Path]:
    """Write OUT/asyncapi.yaml and OUT/schemas/*.json; returns the files written."""
    schema_dir = out_dir / "schemas"
    schema_dir.mkdir(parents=True, exist_ok=True)
    written = []
    target = out_dir / "asyncapi.yaml"
    target.write_text(render_asyncapi_yaml(), encoding="utf-8")
    written.append(target)
    for stem, schema in json_schemas().items():
        path = schema_dir / f"{stem}.json"
        path.write_text(render_json(schema), encoding="utf-8")
        written.append(path)
    return written
