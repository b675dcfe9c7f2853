"""Assemble /work/main/host_tests/ha_reference.json.

Inputs:
  /tmp/ha/out_<venv>.json   -- extract_ref.py run inside each HA venv (live schema objects)
  /tmp/ha/ver_<venv>.json   -- verify_ref.py run inside each HA venv (real DISCOVERY_SCHEMA on probes)
  /tmp/ha/homeassistant-<v>-py3-none-any.whl -- log/exception message texts are pulled out of the
                               wheel sources with `ast`, located by a marker substring.
"""
import ast
import hashlib
import json
import zipfile

VERSIONS = {"2024.1.0": "venv2401", "2025.4.0": "venv2504", "2026.2.0": "venv313"}
VENV_PY = {"venv2401": "CPython 3.11.7", "venv2504": "CPython 3.13.0", "venv313": "CPython 3.13.0"}
WHEEL = "homeassistant-{}-py3-none-any.whl"
OUT = "/work/main/host_tests/ha_reference.json"


def wheel_src(ver, path):
    with zipfile.ZipFile(f"/tmp/ha/{WHEEL.format(ver)}") as z:
        return z.read(path).decode()


def find_message(ver, path, marker, kinds=("warning", "info", "error", "Invalid", "HomeAssistantError")):
    """Return (text, lineno) of the first call (logger.<kind> / vol.Invalid) whose first
    argument contains `marker`. Plain strings are returned as-is; f-strings via ast.unparse."""
    tree = ast.parse(wheel_src(ver, path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
        if name not in kinds:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text = arg.value
        elif isinstance(arg, ast.JoinedStr):
            text = ast.unparse(arg)
        else:
            continue
        if marker in text:
            return text, node.lineno
    # fallback: a string constant assigned elsewhere (e.g. cv._deprecated_or_removed's `warning = ...`)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and marker in node.value:
            return node.value, node.lineno
    raise LookupError(f"{marker!r} not found in {ver}:{path}")


def msg(ver, path, marker, **kw):
    text, line = find_message(ver, path, marker, **kw)
    return {"template": text, "source": f"{WHEEL.format(ver)}:{path} L{line}"}


def wheel_sha(ver):
    with open(f"/tmp/ha/{WHEEL.format(ver)}", "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


CV = "homeassistant/helpers/config_validation.py"
MQTT = "homeassistant/components/mqtt/"


def build_version(ver):
    venv = VERSIONS[ver]
    ex = json.load(open(f"/tmp/ha/out_{venv}.json"))
    pr = json.load(open(f"/tmp/ha/ver_{venv}.json"))["probes"]
    assert ex["ha_version"] == ver, (ex["ha_version"], ver)
    schemas_file = ex["schemas_module"]
    via_hub_tpl = msg(ver, CV, "please replace it with")

    def probe(name):
        p = pr[name]
        return {k: p[k] for k in ("ok", "error", "logs") if k in p and (k != "logs" or p[k])}

    d = {}
    d["sensor_config_keys"] = ex["sensor_config_keys"]
    d["sensor_required_keys"] = ex["sensor_required_keys"]
    d["sensor_config_key_details"] = ex["sensor_config_key_details"]
    d["sensor_extra"] = ex["sensor_extra"]
    d["availability_item_keys"] = ex["availability_item_keys"]
    d["availability_item_extra"] = "remove"
    d["device_keys"] = ex["device_keys"]
    d["device_extra"] = ex["device_extra"]
    d["device_requires_one_of"] = ["identifiers", "connections"]
    d["device_keys_renamed_with_deprecation_warning"] = {"via_hub": "via_device"}
    d["origin_keys"] = ex["origin_keys"]
    d["origin_required_keys"] = ex["origin_required_keys"]
    d["origin_extra"] = ex["origin_extra"]
    d["abbreviations"] = ex["abbreviations"]
    d["device_abbreviations"] = ex["device_abbreviations"]
    d["origin_abbreviations"] = ex["origin_abbreviations"]
    d["device_classes"] = ex["device_classes"]
    d["device_class_units"] = ex["device_class_units"]
    d["device_classes_without_units_entry"] = ex["device_classes_without_units_entry"]
    d["device_class_state_classes"] = ex["device_class_state_classes"]
    d["non_numeric_device_classes"] = ex["non_numeric_device_classes"]
    d["state_classes"] = ex["state_classes"]
    d["state_class_units"] = ex["state_class_units"]
    d["ambiguous_units"] = ex["ambiguous_units"]
    d["entity_categories"] = ex["entity_categories"]
    d["sensor_entity_categories_allowed"] = ["diagnostic"]

    cfg_err = msg(ver, "homeassistant/components/sensor/__init__.py",
                  "cannot be added as the entity category is set to config")
    if ver == "2024.1.0":
        ec = msg(ver, MQTT + "mixins.py", "Entity category `config` is invalid for sensors")
        d["sensor_entity_category_config_behaviour"] = {
            "behaviour": "accepted by the MQTT discovery schema, then popped with a warning; the "
                         "entity is created WITHOUT an entity category",
            "warning": ec,
            "probe": probe("entity_category_config"),
        }
    else:
        d["sensor_entity_category_config_behaviour"] = {
            "behaviour": "passes the MQTT discovery schema (vol.Coerce(EntityCategory)); the sensor "
                         "entity then fails to be added (HomeAssistantError in "
                         "SensorEntity.async_internal_added_to_hass)",
            "error": cfg_err,
            "probe": probe("entity_category_config"),
        }

    # ---------------- deprecated keys / rejected keys ----------------
    dep = [{
        "key": "device.via_hub",
        "condition": "'via_hub' present inside 'device'",
        "warning_template": via_hub_tpl["template"],
        "warning_observed": probe("device_via_hub")["logs"][0],
        "effect": "value moved to device.via_device; entity still created",
        "source": f"{schemas_file}: MQTT_ENTITY_DEVICE_INFO_SCHEMA = vol.All(cv.deprecated("
                  f"CONF_DEPRECATED_VIA_HUB, CONF_VIA_DEVICE), ...); text: {via_hub_tpl['source']}",
    }]
    rejected = []
    if ver == "2024.1.0":
        ec = msg(ver, MQTT + "mixins.py", "Entity category `config` is invalid for sensors")
        dep.append({
            "key": "entity_category",
            "condition": "entity_category == 'config' (sensor platform, discovery)",
            "warning_template": ec["template"],
            "effect": "entity_category removed from the config; entity created without category",
            "source": f"{MQTT}mixins.py validate_sensor_entity_category(); text: {ec['source']}",
        })
        rm = msg(ver, CV, "please remove it from your configuration")
        rejected.append({
            "key": "last_reset_topic",
            "condition": "key present (cv.removed(CONF_LAST_RESET_TOPIC), raise_if_present=True)",
            "error_template": rm["template"],
            "error_observed": probe("last_reset_topic")["error"],
            "effect": "vol.Invalid -> whole discovery config rejected",
            "source": f"{MQTT}sensor.py DISCOVERY_SCHEMA (L95); text: {rm['source']}",
        })
    if ver == "2025.4.0":
        um = msg(ver, MQTT + "sensor.py", "is not valid ")
        dep.append({
            "key": "unit_of_measurement",
            "condition": "device_class and unit_of_measurement both set, device_class in "
                         "DEVICE_CLASS_UNITS and unit not in DEVICE_CLASS_UNITS[device_class]",
            "warning_template": um["template"],
            "warning_observed": probe("energy_kW_bad_unit")["logs"][0],
            "effect": "warning only; entity created",
            "source": f"{MQTT}sensor.py validate_sensor_state_and_device_class_config(); text: {um['source']}",
        })
    if ver == "2026.2.0":
        ob = msg(ver, MQTT + "entity.py", "uses the deprecated option ")
        dep.insert(0, {
            "key": "object_id",
            "condition": "discovery config contains 'object_id' and does NOT contain "
                         "'default_entity_id' (if both are present default_entity_id wins and "
                         "nothing is logged)",
            "warning_template": ob["template"],
            "warning_args": ["self.entity_id", "self._config[CONF_OBJECT_ID]",
                             "f'{domain}.{self._config[CONF_OBJECT_ID]}'",
                             "origin (origin name, or 'the integration' when no origin)"],
            "effect": "warning only; object_id still used for the suggested entity id "
                      "(support removed in 2026.4)",
            "source": f"{MQTT}entity.py MqttEntity._init_entity_id() L1411-1466; text: {ob['source']}",
            "note": "logged at entity creation, not by the schema; YAML configs get a repair issue "
                    "(translation_key deprecated_object_id, breaks_in_ha_version 2026.4) instead",
        })
    d["deprecated_keys"] = dep
    d["rejected_keys"] = rejected

    # ---------------- unit check ----------------
    if ver == "2024.1.0":
        d["mqtt_unit_check"] = "none"
        d["mqtt_unit_check_detail"] = {
            "behaviour": "mqtt/sensor.py does not consult DEVICE_CLASS_UNITS; any unit passes the "
                         "discovery schema",
            "probe_energy_kW": probe("energy_kW_bad_unit"),
        }
    elif ver == "2025.4.0":
        um = msg(ver, MQTT + "sensor.py", "is not valid ")
        d["mqtt_unit_check"] = "warn"
        d["mqtt_unit_check_detail"] = {
            "behaviour": "validate_sensor_state_and_device_class_config logs a warning, config "
                         "accepted unchanged (no AMBIGUOUS_UNITS normalisation)",
            "warning": um,
            "probe_energy_kW": probe("energy_kW_bad_unit"),
            "probe_reactive_power_VAr": probe("reactive_power_VAr"),
        }
    else:
        um = msg(ver, MQTT + "sensor.py", "is not valid together with device class")
        sc = msg(ver, MQTT + "sensor.py", "is not valid together with state class")
        d["mqtt_unit_check"] = "reject"
        d["mqtt_unit_check_detail"] = {
            "behaviour": "unit first normalised via AMBIGUOUS_UNITS (e.g. VAr->var); then "
                         "vol.Invalid if unit not in DEVICE_CLASS_UNITS[device_class]; also "
                         "vol.Invalid if state_class in STATE_CLASS_UNITS and unit not allowed; "
                         "a blank unit_of_measurement is dropped",
            "error": um,
            "state_class_error": sc,
            "probe_energy_kW": probe("energy_kW_bad_unit"),
            "probe_reactive_power_VAr": {**probe("reactive_power_VAr"),
                                         "normalised_unit": pr["reactive_power_VAr"].get("unit_of_measurement")},
        }
    core = msg(ver, "homeassistant/components/sensor/__init__.py",
               "is not a valid unit for the device class")
    d["core_sensor_unit_warning"] = {
        "behaviour": "independent of MQTT: SensorEntity logs this once at runtime when the native "
                     "unit is not in DEVICE_CLASS_UNITS (all three versions)",
        **core,
    }

    # ---------------- sensor-level validators ----------------
    if ver == "2024.1.0":
        d["sensor_validators"] = ["cv.removed('last_reset_topic') -> reject",
                                  "validate_sensor_entity_category(discovery=True) -> pop 'config' + warn"]
    else:
        d["sensor_validators"] = [
            msg(ver, MQTT + "sensor.py", "cannot be used ", kinds=("Invalid",)),
            msg(ver, MQTT + "sensor.py", "An empty options list", kinds=("Invalid",)),
            msg(ver, MQTT + "sensor.py", "is not allowed together with", kinds=("Invalid",)),
            msg(ver, MQTT + "sensor.py", "must be used ", kinds=("Invalid",)),
        ]

    # ---------------- birth ----------------
    b = ex["birth"]
    d["birth"] = {
        "topic": b["DEFAULT_BIRTH"]["topic"],
        "payload": b["DEFAULT_BIRTH"]["payload"],
        "qos": b["DEFAULT_BIRTH"]["qos"],
        "retain": b["DEFAULT_BIRTH"]["retain"],
        "will": b["DEFAULT_WILL"],
        "discovery_prefix_default": b["DEFAULT_PREFIX"],
    }
    d["default_payload_available"] = ex["default_payload_available"]
    d["default_payload_not_available"] = ex["default_payload_not_available"]

    # probes run against the real schema
    d["probes_run"] = {k: {kk: vv for kk, vv in v.items() if kk in ("ok", "error", "logs") and (kk != "logs" or vv)}
                       for k, v in pr.items()}
    d["_files"] = {k: v for k, v in ex["files"].items()}
    return d


def main():
    ref = {"schema_version": 1, "versions": {}}
    for ver in VERSIONS:
        ref["versions"][ver] = build_version(ver)
    # flatten for convenience: top level keyed by version, as requested
    out = {v: ref["versions"][v] for v in VERSIONS}
    src = {}
    for ver, venv in VERSIONS.items():
        ex = json.load(open(f"/tmp/ha/out_{venv}.json"))
        src[ver] = {
            "wheel": WHEEL.format(ver),
            "wheel_sha256": wheel_sha(ver),
            "obtained_with": f"pip download homeassistant=={ver} --no-deps --only-binary=:all: --python-version 3.1x (pure-python py3-none-any wheel; see /work/research/ha.md)",
            "executed_in": f"venv with homeassistant=={ver} installed from PyPI ({VENV_PY[venv]}); "
                           "installed module files byte-identical to the wheel for every file used",
            "method": {
                "sensor_config_keys/sensor_extra/device_keys/origin_keys/availability_item_keys":
                    f"introspected the live voluptuous objects: {ex['files']['sensor']} DISCOVERY_SCHEMA "
                    "(vol.All -> last vol.Schema; keys = markers of .schema, extra = .extra); device/origin = "
                    f"vol.Schema inside the values of 'device'/'origin' (defined in {ex['schemas_module']})",
                "abbreviations/device_abbreviations/origin_abbreviations":
                    f"dict(ABBREVIATIONS), dict(DEVICE_ABBREVIATIONS), dict(ORIGIN_ABBREVIATIONS) from {ex['files']['abbreviations']}",
                "device_classes/state_classes/device_class_units/device_class_state_classes/state_class_units/ambiguous_units/non_numeric_device_classes":
                    f"SensorDeviceClass, SensorStateClass, DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES, "
                    f"STATE_CLASS_UNITS, AMBIGUOUS_UNITS, NON_NUMERIC_DEVICE_CLASSES from {ex['files']['sensor_enums']} "
                    "(enum members converted to .value; None kept as null; units sorted, null last)",
                "entity_categories": f"EntityCategory from {ex['files']['entity_category']}",
                "birth": f"DEFAULT_BIRTH / DEFAULT_WILL / DEFAULT_PREFIX from {ex['files']['mqtt_const']}",
                "warning/error texts": "pulled out of the wheel's .py files with ast (first argument of the "
                                       "logger/vol.Invalid call; f-strings rendered with ast.unparse); "
                                       "'*_observed' and 'probes_run' are real outputs of DISCOVERY_SCHEMA in the venv",
                "deprecated_keys/mqtt_unit_check/sensor_entity_categories_allowed":
                    "classification written by reading the cited source lines; texts extracted as above",
            },
        }
    out_all = {
        **out,
        "source": src,
        "notes": [
            "Generated by /tmp/ha/extract_ref.py + /tmp/ha/verify_ref.py (run inside each HA venv) and "
            "/tmp/ha/build_ref.py; nothing typed from memory except the classifications described in source.*.method.",
            "Discovery pipeline (single-component topic <prefix>/sensor/[<node_id>/]<object_id>/config): "
            "abbreviations are expanded first (top level + each availability item with ABBREVIATIONS, "
            "'device' with DEVICE_ABBREVIATIONS, 'origin' with ORIGIN_ABBREVIATIONS), then '~' (TOPIC_BASE) "
            "is substituted into keys ending in 'topic' and availability[].topic, then origin is validated "
            "on its own (invalid origin -> the whole message is ignored with a warning), then "
            "sensor DISCOVERY_SCHEMA runs. Unknown abbreviations are not errors: they stay as unknown keys "
            "and are removed (sensor_extra 'remove').",
            "'~' and (2025.4.0+) 'migrate_discovery'/'migr_discvry' are consumed by discovery.py before the "
            "schema and are therefore not in sensor_config_keys. 2024.1.0 discovery.py sets "
            "payload['platform']='mqtt', which the schema then removes.",
            "extra handling: the sensor discovery schema is _PLATFORM_SCHEMA_BASE.extend({}, extra=vol.REMOVE_EXTRA). "
            "Literal dicts nested in it (availability list items) inherit REMOVE_EXTRA (probe "
            "availability_item_unknown_key: unknown key silently dropped). 'device' and 'origin' are separate "
            "vol.Schema objects with the default PREVENT_EXTRA: an unknown key there rejects the whole entity.",
            "device_class_units only lists device classes present in DEVICE_CLASS_UNITS; classes in "
            "device_classes_without_units_entry (date, enum, monetary, timestamp) are not unit-checked by MQTT.",
            "Units are emitted with ensure_ascii JSON escapes so that U+00B5 MICRO SIGN and U+03BC GREEK MU "
            "stay distinguishable (2025.4.0 voltage uses \u00b5V, 2026.2.0 uses \u03bcV; 2026.2.0 maps "
            "\u00b5-forms to \u03bc-forms via AMBIGUOUS_UNITS).",
            "2024.1.0 still has the abbreviation lrst_t -> last_reset_topic, and last_reset_topic is rejected there "
            "(rejected_keys); the abbreviation is gone from 2025.4.0 and an unknown key is just removed.",
            "2024.1.0 sensor_validators are short descriptions (that version has no "
            "validate_sensor_state_and_device_class_config); 2025.4.0/2026.2.0 list the vol.Invalid texts.",
            "sensor_entity_categories_allowed: the core sensor refuses EntityCategory.CONFIG in all three "
            "versions (homeassistant/components/sensor/__init__.py, async_internal_added_to_hass); in "
            "2024.1.0 MQTT strips 'config' before that (see sensor_entity_category_config_behaviour).",
            "default_entity_id semantics (2025.10.0+, so only 2026.2.0 here): entity.py _init_entity_id uses "
            "default_entity_id.partition('.')[2]; a value without a dot yields an empty object id.",
            "Not extracted from source / not covered: runtime-only behaviour that needs a running hass "
            "(the object_id deprecation warning is logged in MqttEntity._init_entity_id, so its rendered "
            "text was not observed, only its template); DEVICE_DISCOVERY_SCHEMA (device-based discovery, "
            "2024.11.0+) is not part of this file.",
        ],
    }
    with open(OUT, "w", encoding="ascii") as f:
        json.dump(out_all, f, indent=1, ensure_ascii=True)
        f.write("\n")


if __name__ == "__main__":
    main()
