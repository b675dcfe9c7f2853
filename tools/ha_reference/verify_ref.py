"""Run the real DISCOVERY_SCHEMA on probe payloads; print JSON of outcomes + log records."""
import json
import logging
import sys

import homeassistant.components.persistent_notification  # noqa: F401  (2024.1 import cycle)
import voluptuous as vol
from homeassistant.const import __version__ as V
from homeassistant.components.mqtt import sensor as ms


class Cap(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, r):
        if r.levelno >= logging.WARNING:
            self.records.append(f"{r.levelname} {r.name}: {r.getMessage()}")


cap = Cap()
logging.getLogger().addHandler(cap)
logging.getLogger().setLevel(logging.DEBUG)

base = {"state_topic": "p1/x", "unique_id": "u1"}
probes = {
    "minimal": {},
    "unknown_top_key": {"foo_bar": 1},
    "default_entity_id": {"default_entity_id": "sensor.p1_x"},
    "object_id": {"object_id": "p1_x"},
    "unknown_device_key": {"device": {"identifiers": ["a"], "foo": "x"}},
    "device_serial_model_id": {"device": {"identifiers": ["a"], "serial_number": "1", "model_id": "m"}},
    "device_via_hub": {"device": {"identifiers": ["a"], "via_hub": "hub1"}},
    "device_no_identifier": {"device": {"name": "x"}},
    "unknown_origin_key": {"origin": {"name": "fw", "foo": "x"}},
    "origin_no_name": {"origin": {"sw_version": "1"}},
    "availability_item_unknown_key": {"availability": [{"topic": "a/s", "foo": 1}]},
    "last_reset_topic": {"last_reset_topic": "x"},
    "entity_category_config": {"entity_category": "config"},
    "entity_category_diagnostic": {"entity_category": "diagnostic"},
    "entity_category_bogus": {"entity_category": "bogus"},
    "energy_kW_bad_unit": {"device_class": "energy", "unit_of_measurement": "kW", "state_class": "total_increasing"},
    "energy_kWh_measurement": {"device_class": "energy", "unit_of_measurement": "kWh", "state_class": "measurement"},
    "reactive_power_VAr": {"device_class": "reactive_power", "unit_of_measurement": "VAr", "state_class": "measurement"},
    "unknown_device_class": {"device_class": "reactive_energy", "unit_of_measurement": "kvarh"},
    "empty_unit": {"unit_of_measurement": ""},
    "options_without_enum": {"options": ["a", "b"]},
    "entity_picture": {"entity_picture": "https://x/y.png"},
}
out = {"ha_version": V, "probes": {}}
for name, extra in probes.items():
    cap.records.clear()
    cfg = {**base, **json.loads(json.dumps(extra))}
    try:
        res = ms.DISCOVERY_SCHEMA(cfg)
        r = {"ok": True, "kept": sorted(set(res) & (set(extra) | {"device", "origin", "availability", "unit_of_measurement"}))}
        for k in ("device", "origin", "availability", "unit_of_measurement", "entity_category"):
            if k in res:
                v = res[k]
                r[k] = sorted(v) if isinstance(v, dict) else (
                    [sorted(i) for i in v] if isinstance(v, list) else str(getattr(v, "value", v)))
    except vol.Invalid as e:
        r = {"ok": False, "error": str(e)}
    r["logs"] = list(cap.records)
    out["probes"][name] = r
json.dump(out, sys.stdout, indent=1)
