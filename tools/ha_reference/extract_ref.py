"""Extract the MQTT sensor discovery reference from an installed Home Assistant.

Run with the python of a venv that has exactly one HA version installed.
Prints JSON to stdout.  Everything here is read from live objects of that
version (schemas, enums, dict constants); nothing is typed by hand.
"""
import enum
import inspect
import json
import sys

import voluptuous as vol

import homeassistant
# 2024.1 has a circular import when mqtt is imported first; pre-import this
import homeassistant.components.persistent_notification  # noqa: F401
from homeassistant.const import CONF_DEVICE
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.components.mqtt import abbreviations as abbr
from homeassistant.components.mqtt import const as mconst
from homeassistant.components.mqtt import sensor as msensor
from homeassistant.components import sensor as core_sensor
from homeassistant.helpers.entity import EntityCategory

try:
    from homeassistant.components.mqtt import schemas as mschemas  # >= 2024.?
    SCHEMAS_MOD = "homeassistant/components/mqtt/schemas.py"
except ImportError:  # 2024.1: lives in mixins.py
    from homeassistant.components.mqtt import mixins as mschemas
    SCHEMAS_MOD = "homeassistant/components/mqtt/mixins.py"

EXTRA = {vol.PREVENT_EXTRA: "prevent", vol.ALLOW_EXTRA: "allow", vol.REMOVE_EXTRA: "remove"}


def s(v):
    """JSON-friendly str for enum / unit values."""
    if v is None:
        return None
    if isinstance(v, enum.Enum):
        return v.value
    return str(v)


def schemas_in(validator):
    """Yield vol.Schema objects found in a validator (vol.All / vol.Any / Schema)."""
    if isinstance(validator, vol.Schema):
        yield validator
    validators = getattr(validator, "validators", None)
    if validators:
        for v in validators:
            yield from schemas_in(v)


def plain_validators(validator):
    """Names of non-Schema callables inside a vol.All (e.g. cv.deprecated closures)."""
    out = []
    for v in getattr(validator, "validators", []) or []:
        if isinstance(v, vol.Schema) or getattr(v, "validators", None):
            continue
        name = getattr(v, "__qualname__", repr(v))
        closure = {}
        if getattr(v, "__closure__", None):
            for cname, cell in zip(v.__code__.co_freevars, v.__closure__):
                try:
                    val = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(val, (str, bool, int)) or val is None:
                    closure[cname] = val
        out.append({"validator": name, "module": getattr(v, "__module__", None), "closure": closure})
    return out


def describe_keys(schema: vol.Schema):
    out = {}
    for marker in schema.schema:
        key = str(marker)
        info = {"marker": type(marker).__name__}
        default = getattr(marker, "default", vol.UNDEFINED)
        if default is not vol.UNDEFINED:
            try:
                d = default()
            except TypeError:
                d = default
            info["default"] = d if isinstance(d, (str, int, bool, list, type(None))) else repr(d)
        grp = getattr(marker, "group_of_exclusion", None)
        if grp:
            info["exclusive_group"] = grp
        out[key] = info
    return out


def main():
    res = {"ha_version": HA_VERSION, "schemas_module": SCHEMAS_MOD}

    # ---- sensor discovery schema -------------------------------------------------
    disc = msensor.DISCOVERY_SCHEMA
    found = list(schemas_in(disc))
    # The platform schema is the (last) vol.Schema inside the vol.All
    base = found[-1]
    keys = describe_keys(base)
    res["sensor_config_keys"] = sorted(keys)
    res["sensor_config_key_details"] = dict(sorted(keys.items()))
    res["sensor_required_keys"] = sorted(k for k, i in keys.items() if i["marker"] == "Required")
    res["sensor_extra"] = EXTRA[base.extra]
    res["sensor_discovery_validators"] = plain_validators(disc)

    # availability list item keys (nested literal dict inside the list)
    avail_marker = next(m for m in base.schema if str(m) == mconst.CONF_AVAILABILITY)
    avail_val = base.schema[avail_marker]
    item_schema = None
    for sch in schemas_in(avail_val):
        pass
    for v in getattr(avail_val, "validators", []):
        if isinstance(v, list) and v and isinstance(v[0], dict):
            item_schema = v[0]
    if item_schema is not None:
        res["availability_item_keys"] = sorted(str(k) for k in item_schema)
        res["availability_item_extra"] = (
            EXTRA[base.extra] + " (literal dict compiled with the parent schema's extra setting)"
        )

    # ---- device / origin --------------------------------------------------------
    dev_marker = next(m for m in base.schema if str(m) == CONF_DEVICE)
    dev_val = base.schema[dev_marker]
    dev_schema = list(schemas_in(dev_val))[-1]
    res["device_keys"] = sorted(describe_keys(dev_schema))
    res["device_extra"] = EXTRA[dev_schema.extra]
    res["device_validators"] = plain_validators(dev_val)

    org_marker = next(m for m in base.schema if str(m) == mconst.CONF_ORIGIN)
    org_val = base.schema[org_marker]
    org_schema = list(schemas_in(org_val))[-1]
    okeys = describe_keys(org_schema)
    res["origin_keys"] = sorted(okeys)
    res["origin_required_keys"] = sorted(k for k, i in okeys.items() if i["marker"] == "Required")
    res["origin_extra"] = EXTRA[org_schema.extra]

    # ---- abbreviations ------------------------------------------------------------
    res["abbreviations"] = dict(abbr.ABBREVIATIONS)
    res["device_abbreviations"] = dict(abbr.DEVICE_ABBREVIATIONS)
    res["origin_abbreviations"] = dict(abbr.ORIGIN_ABBREVIATIONS)

    # ---- sensor enums / tables ------------------------------------------------------
    SDC = core_sensor.SensorDeviceClass
    SSC = core_sensor.SensorStateClass
    res["device_classes"] = [m.value for m in SDC]
    res["state_classes"] = [m.value for m in SSC]
    dcu = core_sensor.DEVICE_CLASS_UNITS
    res["device_class_units"] = {
        s(dc): sorted((s(u) for u in units), key=lambda x: (x is None, x or ""))
        for dc, units in sorted(dcu.items(), key=lambda kv: s(kv[0]))
    }
    dcs = core_sensor.DEVICE_CLASS_STATE_CLASSES
    res["device_class_state_classes"] = {
        s(dc): sorted(s(x) for x in scs) for dc, scs in sorted(dcs.items(), key=lambda kv: s(kv[0]))
    }
    res["device_classes_without_units_entry"] = sorted(
        m.value for m in SDC if m not in dcu
    )
    res["device_classes_without_state_class_entry"] = sorted(
        m.value for m in SDC if m not in dcs
    )
    res["non_numeric_device_classes"] = sorted(s(x) for x in core_sensor.NON_NUMERIC_DEVICE_CLASSES)
    scu = getattr(core_sensor, "STATE_CLASS_UNITS", None)
    res["state_class_units"] = (
        None if scu is None else {s(k): sorted(s(u) for u in v) for k, v in scu.items()}
    )
    amb = getattr(core_sensor, "AMBIGUOUS_UNITS", None)
    res["ambiguous_units"] = None if amb is None else {str(k): s(v) for k, v in amb.items()}
    res["mqtt_sensor_uses"] = {
        "DEVICE_CLASS_UNITS": hasattr(msensor, "DEVICE_CLASS_UNITS"),
        "STATE_CLASS_UNITS": hasattr(msensor, "STATE_CLASS_UNITS"),
        "AMBIGUOUS_UNITS": hasattr(msensor, "AMBIGUOUS_UNITS"),
    }

    res["entity_categories"] = [m.value for m in EntityCategory]

    # ---- birth ------------------------------------------------------------------------
    res["birth"] = {
        "DEFAULT_PREFIX": mconst.DEFAULT_PREFIX,
        "DEFAULT_BIRTH_WILL_TOPIC": getattr(mconst, "DEFAULT_BIRTH_WILL_TOPIC", None),
        "DEFAULT_BIRTH": dict(mconst.DEFAULT_BIRTH),
        "DEFAULT_WILL": dict(mconst.DEFAULT_WILL),
    }
    res["default_payload_available"] = mconst.DEFAULT_PAYLOAD_AVAILABLE
    res["default_payload_not_available"] = mconst.DEFAULT_PAYLOAD_NOT_AVAILABLE
    res["supported_components_has_sensor"] = "sensor" in mconst.SUPPORTED_COMPONENTS \
        if hasattr(mconst, "SUPPORTED_COMPONENTS") else None

    # where things came from
    res["files"] = {
        "sensor": inspect.getsourcefile(msensor).split("site-packages/")[1],
        "schemas": inspect.getsourcefile(mschemas).split("site-packages/")[1],
        "abbreviations": inspect.getsourcefile(abbr).split("site-packages/")[1],
        "mqtt_const": inspect.getsourcefile(mconst).split("site-packages/")[1],
        "sensor_enums": inspect.getsourcefile(SDC).split("site-packages/")[1],
        "device_class_units": inspect.getsourcefile(
            sys.modules[core_sensor.DEVICE_CLASS_UNITS.__class__.__module__]
        ).split("site-packages/")[1] if False else "homeassistant/components/sensor/const.py",
        "entity_category": inspect.getsourcefile(EntityCategory).split("site-packages/")[1],
    }
    json.dump(res, sys.stdout, indent=1, sort_keys=False, default=repr)


if __name__ == "__main__":
    main()
