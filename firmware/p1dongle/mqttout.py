# What the dongle publishes over MQTT, and how Home Assistant finds it.
#
#   <prefix>/telegram      the plain telegram, byte-exact (QoS 0)
#   <prefix>/state         JSON: every reading by name, plus "units" {name: unit} (QoS 0)
#                          e.g. {"powerTs": "2026-11-25T15:22:37+01:00", "totalImportedEnergyP":
#                          23949.194, "currentUsage": 0.878, ..., "units": {"currentUsage": "kW"}};
#                          numbers exactly as the meter's digits (state.py)
#   <prefix>/status        the dongle: "online", or "offline" (retained; the last will, and sent
#                          before every clean stop)
#   <prefix>/meter         the meter: "online" while telegrams come, "offline" once it has been
#                          silent for 3 of its intervals, at least 30 s (retained)
#   <prefix>/peaks         JSON: the dongle's own peaks from the import register (history.py),
#                          for every meter: {"average_w", "month_peak_w", "month_peak_time",
#                          "hour_peaks_average_w", "hour_peak_time"} (null: not known yet), with
#                          a telegram at most every PEAKS_EVERY_MS (QoS 0, as the state)
#   <prefix>/diagnostics   JSON: uptime, telegrams, tag and CRC failures, dropped bytes, TCP
#                          clients, free heap, Wi-Fi RSSI, MQTT messages dropped (retained)
#   <prefix>/firmware      JSON: the firmware as Home Assistant's update entity reads it,
#                          {"installed_version", "latest_version", "in_progress",
#                          "update_percentage"} (retained; firmware())
#   <discovery>/sensor/<node>/<name>/config
#                          Home Assistant MQTT discovery (retained): a sensor per reading whose
#                          OBIS row names a Home Assistant kind (obis.py), on a device for the
#                          meter, available while the dongle and the meter both are; the
#                          dongle's diagnostics on a device of its own, available with the dongle.
#                          An empty config removes a reading the meter no longer sends. All of it
#                          is made from the latest readings while it is sent, after every connect
#                          and whenever Home Assistant says it is back (its birth message).
#   <discovery>/update/<node>/firmware/config
#                          the firmware as an update entity on the dongle's device (retained, with
#                          the sensors' configs). It has no command topic: the dongle cannot
#                          fetch an image itself, an image is sent to it over HTTP.
#
# prefix defaults to p1dongle/<device id>; discovery defaults to homeassistant. The discovery
# keys are the abbreviations Home Assistant has known since 2024.1, the minimum release this is
# made for; "default_entity_id" (2025.10) goes beside "object_id" (which 2026.4 no longer reads),
# and older releases drop the key they do not know. Ids: entity ids sensor.<device id>_<label>
# ("sensor.p1dongle_energy_import"), unique ids p1dongle_<node>_<meter id>_<name>, so that two
# dongles never collide. (Device-based discovery, one message per device, came with 2024.11: not
# for 2024.1, and one config at a time is what the dongle's heap wants anyway.)
#
# As an output (output.py), MQTT is this and its client (mqtt.py), made by make() when the
# settings name a broker: the client's session and the meter's watch run beside the app.
import asyncio
import json

from . import VERSION, memory, obis
from .compat import ticks_diff, ticks_ms
from .dsmr import line_end
from .jsonbuf import JsonBuffer
from .output import Output
from .reading import IDENTIFIERS, find, identifier
from .state import Writer, state_json, telegram_json
from .tables import pick

# Makers by the FLAG id (the first 3 letters of a meter's identification or system title), and
# models a telegram names only by its identification line: pairs in tuples, which a frozen image
# keeps in flash (a dict is built in the heap at import).
MAKERS = (
    ("SAG", "Sagemcom"), ("KFM", "Kaifa"), ("ISK", "Iskraemeco"), ("ISk", "Iskraemeco"), ("LGZ", "Landis+Gyr"),
    ("LGF", "Landis+Gyr"), ("KAM", "Kamstrup"), ("KMP", "Kamstrup"), ("SMS", "Siemens"), ("AID", "Aidon"),
    ("ELS", "Elster"), ("EMH", "EMH"), ("XMX", "Xemex"), ("ZIV", "ZIV"), ("EGM", "Elgama"), ("APA", "Apator"),
)
MODELS = (("Lux5\\253663629_D", "T210-D"),)

# The dongle's diagnostics (App.diagnostics): name -> (label, device_class, state_class, unit)
DIAGNOSTICS = (
    ("wifi_rssi", "Wi-Fi signal", "signal_strength", "measurement", "dBm"),
    ("uptime", "Uptime", "duration", "measurement", "s"),
    ("telegrams", "Telegrams", None, "total_increasing", None),
    ("tag_failures", "Tag failures", None, "total_increasing", None),
    ("crc_failures", "CRC failures", None, "total_increasing", None),
    ("bad_frames", "Bad frames", None, "total_increasing", None),
    ("dropped_bytes", "Dropped bytes", None, "total_increasing", None),
    ("memory_errors", "Memory errors", None, "total_increasing", None),
    ("mqtt_dropped", "MQTT messages dropped", None, "total_increasing", None),
    ("tcp_clients", "TCP clients", None, "measurement", None),
    ("free_heap", "Free heap", "data_size", "measurement", "B"),
)

SILENT_MIN_MS = 30000     # the meter is silent after 3 of its intervals, never less than this
GONE_MS = 3 * 3600 * 1000  # a reading not seen for 3 hours is one the meter no longer sends (some
                           # push lists only hourly)
SEEN_EVERY_MS = 60000      # how often the readings of a steady telegram are marked as seen
PEAKS_EVERY_MS = 10000    # the peaks' topic at most this often (a 15-minute average needs no more)
# The peaks as sensors on the meter's device: key in the peaks JSON, label, device class, state class
PEAKS = (
    ("average_w", "Power average 15 min", "power", "measurement"),
    ("month_peak_w", "Peak this month", "power", "measurement"),
    ("month_peak_time", "Peak this month time", "timestamp", None),
    ("hour_peaks_average_w", "Hour peaks average", "power", "measurement"),
)
NAME_WAIT_MS = 60000       # how long a DLMS meter's readings wait for its identifier (meters that
                           # push several lists name themselves in the second, 10 s after the first)



def slug(text):
    out = []
    for c in text:
        out.append(c if ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9") else "_")
    return "".join(out)


def entity_slug(text):
    # "Power import L1" -> "power_import_l1"
    out = []
    for c in text.lower():
        if "a" <= c <= "z" or "0" <= c <= "9":
            out.append(c)
        elif out and out[-1] != "_":
            out.append("_")
    return "".join(out).strip("_")


def meter_id(readings):
    """The meter's own identifier, as it writes it (leading zeros kept); else its header."""
    return identifier(readings) or find(readings, "header") or "meter"


def meter_device(readings, node, dongle_ids, rendered=None):
    """Home Assistant's device for the meter, as this dongle reads it: its maker and model as the
    readings tell them (rendered: the header of the telegram the dongle wrote for a DLMS meter,
    which names the maker by its system title; its model only the readings can say)."""
    ident = meter_id(readings)
    header = rendered or find(readings, "header") or ""
    for text in (find(readings, "logicalDeviceName"), find(readings, "meterId"), header):
        maker = pick(MAKERS, text[:3]) if isinstance(text, str) else None
        if maker:
            break
    model = find(readings, "meterType") or find(readings, "meterModel")
    if not model and not rendered:
        model = pick(MODELS, header) or header
    device = {"ids": ["p1dongle_%s_%s" % (node, slug(ident))], "name": "%s %s" % (maker or "Smart meter", ident),
              "via_device": dongle_ids[0]}
    if model and isinstance(model, str):
        device["mdl"] = model
    if maker:
        device["mf"] = maker
    return device


def _template(name, shift):
    # The state JSON keeps the meter's units; Home Assistant takes some only in others (var, VA).
    if shift == 0:
        return "{{ value_json['%s'] }}" % name
    if shift > 0:
        return "{{ (value_json['%s'] * %d) | round(%d) }}" % (name, 10 ** shift, 3)
    return "{{ (value_json['%s'] / %d) | round(%d) }}" % (name, 10 ** -shift, 6)


def make(view):
    m = view.cfg.get("mqtt")
    if not m:
        return ()
    from .mqtt import MqttClient
    cfg = view.cfg
    prefix = m["prefix"]
    client = MqttClient(m["host"], m["port"], cfg["device_id"], m["user"], m["password"], m["keepalive"],
                        will=(prefix + "/status", "offline"), queue_len=m["queue_len"], log=view.log)
    out = MqttOutput(client, prefix, m["discovery_prefix"], cfg["device_id"], view.log,
                     model=cfg.get("model", "p1dongle"))
    out.connected_to(view)
    client.backlog = view.backlog
    return (out,)


class MqttOutput(Output):
    """Turns telegrams into MQTT messages on an MqttClient; never waits (the client queues)."""
    name = "mqtt"

    def __init__(self, client, prefix, discovery_prefix="homeassistant", device_id="p1dongle", log=print,
                 model="p1dongle", configuration_url=None):
        self.client = client
        self.prefix = prefix
        self._telegram_topic = prefix + "/telegram"     # (made once: they go with every telegram)
        self._state_topic = prefix + "/state"
        self.discovery_prefix = discovery_prefix
        self.device_id = device_id
        self.log = log
        self.node = slug(device_id)
        self.entity = entity_slug(device_id) or "p1dongle"   # what entity ids start with
        self.dongle = {"ids": ["p1dongle_dongle_" + self.node], "name": "P1 dongle " + device_id,
                       "mf": "p1dongle", "mdl": model, "sw": VERSION}
        if configuration_url:
            self.dongle["cu"] = configuration_url
        self.origin = {"name": "p1dongle", "sw": VERSION}
        self._rows = []                 # the rows of the latest telegram (compared as a list: rows
                                        # are shared objects, so mostly by identity)
        self._announced = {}            # name -> ms last seen: the readings Home Assistant has a
                                        # kind for, as announced
        self._named = None              # the reading that named the meter, once one has
        self._seen_ms = ticks_ms()      # when the latest rows were last marked as seen
        self._gone = []                 # config topics of readings the meter stopped sending
        self._latest = None             # the Telegram (telegram.py) discovery is made from
        self._remake = self._state      # (made once: a bound method is a new object each time)
        self._diag_keys = []            # the diagnostics this platform has (no Wi-Fi on a PC)
        self.writer = Writer()          # the state JSON's buffers, kept from telegram to telegram
        self._last_ms = None            # when the latest telegram came, and the one before
        self._interval_ms = 0
        self.meter_online = False
        self._first_ms = None           # a DLMS meter's first telegram: how long it has been unnamed
        self._unnamed = False           # its readings announced without its identifier (never came)
        self._firmware = (VERSION, None, None)  # the last firmware() call: online() says it again
        self._view = None               # app.View, when it runs as the app's output
        self._json = None               # the buffer discovery configs are written into, once used
        self._peaks_ms = None           # when the peaks were last published
        self._peaks_topic = prefix + "/peaks"
        self._peaks_json = None         # the history's peaks_json (bound once: see _peaks)
        if discovery_prefix:
            client.announce(self._announcements)
            client.subscribe(discovery_prefix + "/status", self._birth)

    # -- as the app's output ------------------------------------------------------------------

    def tasks(self):
        return (self.client.run(), self._watch())

    async def stop(self):
        await self.client.stop()

    def shed(self):
        self.client.shed()

    def idle(self):
        return self.client.idle()

    def status_part(self):
        c = self.client
        return ", mqtt %s%s" % ("connected" if c.connected else "down",
                               " (%d messages dropped)" % c.dropped if c.dropped else "")

    def count(self, d):
        d["mqtt_dropped"] = self.client.dropped
        d["mqtt"] = "connected" if self.client.connected else "down"

    def report(self, d):
        self.diagnostics(d)

    def updating(self, updates):
        # Home Assistant's update entity: the version running, and the one coming in
        self.firmware(updates.version, updates.to if updates.busy else None, updates.percentage())

    def connected_to(self, view):
        """Runs as the app's output (its View): on every connect, before anything else is sent,
        the dongle is online, its diagnostics, an update under way."""
        self._view = view
        self.client.on_connect = self._connected

    def _connected(self, client):
        view = self._view
        self.online()
        self.diagnostics(view.diagnostics())
        if view.updates is not None:
            self.updating(view.updates)

    async def _watch(self):
        # Every second: has the meter gone silent (its readings unavailable in Home Assistant)?
        # A bug here must not end the watch for good (the meter would never go offline): one line
        # for each new kind of error, and the next second it looks again.
        said = None
        while True:
            await asyncio.sleep(1)
            try:
                self.check()
            except MemoryError:
                memory.lost(self.log, "p1dongle: out of memory in the meter's watch")
            except Exception as e:      # noqa: BLE001 - see above
                why = "%s: %s" % (e.__class__.__name__, e)
                if why != said:
                    said = why
                    memory.say(self.log, "p1dongle: the meter's watch: %s (a bug: please report it)" % why)

    # -- what it publishes -----------------------------------------------------------------------

    def online(self, client=None):
        """On every connect: the dongle is there; the meter is as it was last heard (a dongle that
        has just started has heard nothing yet: its readings stay unavailable until it does)."""
        self.client.publish(self.prefix + "/status", "online", retain=True, qos=1)
        self.client.publish(self.prefix + "/meter", "online" if self.meter_online else "offline", retain=True, qos=1)
        self.firmware(*self._firmware)

    def firmware(self, installed, latest=None, percentage=None):
        """The firmware for Home Assistant's update entity: the installed version, the latest
        one known (an image being sent to the dongle), and while it is written, how far (0-100).
        Retained, and kept for online() to say again on every connect."""
        self._firmware = (installed, latest, percentage)
        if percentage is not None:
            # Home Assistant (2025.4, 2026.2) refuses the whole message for one outside 0-100
            percentage = min(100, max(0, int(percentage)))
        # Exactly the keys Home Assistant's JSON state takes: another key would make it refuse all
        self.client.publish(self.prefix + "/firmware", json.dumps({
            "installed_version": installed, "latest_version": latest or installed,
            "in_progress": percentage is not None, "update_percentage": percentage}), retain=True, qos=1)

    def telegram(self, t):
        """Publish a telegram (telegram.Telegram): its readings are the pipeline's for a DLMS meter
        (the latest of each), else the state is written straight from the telegram's text (no
        readings are made for it: on the dongle that is most of what a telegram costs)."""
        c = self.client
        self._heard()
        c.publish(self._telegram_topic, t.data, ref=t.number)
        self._latest = t
        doc = self._state()
        if self.discovery_prefix:
            self._track(self.writer.rows if t.pushed is None else [row for row, _ in t.pushed])
        if t.pushed is not None and self._first_ms is None:
            self._first_ms = ticks_ms()
        # A view of the writer's buffer: when the client cannot send it at once, what waits is
        # _state, which writes the newest state there again when it goes.
        c.publish(self._state_topic, doc, latest=True, remake=self._remake)
        self._peaks()

    def _peaks(self):
        history = self._view.history if self._view is not None else None
        if history is None:
            return
        now = ticks_ms()
        if self._peaks_ms is not None and 0 <= ticks_diff(now, self._peaks_ms) < PEAKS_EVERY_MS:
            return
        self._peaks_ms = now
        # Not retained, as the state is not (a retained message is kept in the heap for good);
        # when it has to wait for the broker, it is made again as it goes (remake), not kept.
        if self._peaks_json is None:
            self._peaks_json = history.peaks_json
        self.client.publish(self._peaks_topic, self._peaks_json(), latest=True, remake=self._peaks_json)

    def _state(self):
        """The state JSON of the latest telegram, in the writer's buffer (a view of it)."""
        t = self._latest
        if t.pushed is None:
            return telegram_json(t.data, self.writer, view=True)
        return state_json(t.readings(), self.writer, view=True)

    def _track(self, rows):
        """Which readings the meter sends: a new one is announced to Home Assistant at once (one
        config at a time, as the client sends them, from the latest readings)."""
        now = ticks_ms()
        if rows == self._rows:
            if ticks_diff(now, self._seen_ms) < SEEN_EVERY_MS:
                return                      # the same readings as before: the usual case
        else:
            self._rows = list(rows)
        self._seen_ms = now
        new = False
        seen = self._announced
        for row in self._rows:
            name = row[obis.NAME]
            if row[obis.HA] is not None:
                new = new or name not in seen
                seen[name] = now
            elif name in IDENTIFIERS and self._named is None:
                self._named = name
                new = True                  # the meter has named itself: its configs can go
        if new:
            self.client.announce_again()

    def diagnostics(self, fields):
        keys = [key for key, _, _, _, _ in DIAGNOSTICS if fields.get(key) is not None]
        if keys != self._diag_keys:
            self._diag_keys = keys
            if self.discovery_prefix:
                self.client.announce_again()
        self.client.publish(self.prefix + "/diagnostics", json.dumps(fields), retain=True)

    # -- the meter's availability ------------------------------------------------------------------

    def _heard(self):
        now = ticks_ms()
        if self._last_ms is not None:
            self._interval_ms = ticks_diff(now, self._last_ms)
        self._last_ms = now
        if not self.meter_online:
            self.meter_online = True
            self.client.publish(self.prefix + "/meter", "online", retain=True, qos=1)

    def check(self):
        """Called every second or so. The meter is silent once 3 of its intervals (30 s at least)
        have passed without a telegram: its readings are unavailable then, the dongle is not. A
        reading not seen for GONE_MS is one the meter no longer sends: its config is removed."""
        now = ticks_ms()
        if self.meter_online and self._last_ms is not None:
            limit = max(SILENT_MIN_MS, 3 * self._interval_ms)
            if ticks_diff(now, self._last_ms) > limit:
                self.meter_online = False
                self.log("p1dongle: the meter has sent nothing for %d s: its readings are unavailable" % (limit // 1000))
                self.client.publish(self.prefix + "/meter", "offline", retain=True, qos=1)
        if not self.meter_online:
            return                          # a silent meter's readings are not gone, only stale
        if not self._unnamed and self._waiting_for_name(now) is False and self.discovery_prefix:
            self._unnamed = True            # its name has not come: announce it by its system title
            self.client.announce_again()
        seen = self._announced
        gone = [name for name in seen if ticks_diff(now, seen[name]) > GONE_MS]
        for name in gone:
            del seen[name]
            self._gone.append(self._topic(name))
        if gone and self.discovery_prefix:
            self.client.announce_again()

    # -- discovery --------------------------------------------------------------------------------

    def _birth(self, topic, payload):
        if payload == b"online":            # Home Assistant (re)started: it wants the configs again
            self.client.announce_again()

    def _topic(self, name):
        return "%s/sensor/%s/%s/config" % (self.discovery_prefix, self.node, slug(name))

    def _announcements(self):
        # What the client announces: the update entity, then the sensors, each written into the
        # one buffer kept for them (jsonbuf.py): the client sends a config before it asks for the
        # next. discovery() stays the sensor platform's alone (host_tests/ha.py checks each of its
        # configs against Home Assistant's sensor schema); the update platform has a schema of its own.
        if self._json is None:
            self._json = JsonBuffer()
        topic, config = self._firmware_config()
        yield topic, self._json.dumps(config)
        for topic, config in self._configs():
            yield topic, self._json.dumps(config) if config is not None else b""

    def _firmware_config(self):
        # Not a reading: its topic is never among the _gone ones, so it is never removed. No value
        # template: Home Assistant reads the keys of the firmware JSON itself.
        entity = self.entity + "_firmware"
        config = {"name": "Firmware", "uniq_id": "p1dongle_dongle_%s_firmware" % self.node,
                  "default_entity_id": "update." + entity, "obj_id": entity,
                  "stat_t": self.prefix + "/firmware", "dev": self.dongle, "o": self.origin,
                  "avty_t": self.prefix + "/status", "ent_cat": "config", "dev_cla": "firmware"}
        return "%s/update/%s/firmware/config" % (self.discovery_prefix, self.node), config

    def discovery(self):
        """The sensors' (topic, payload) pairs, as the client announces them after the update
        entity's (_announcements()); an empty payload removes a sensor."""
        for topic, config in self._configs():
            yield topic, json.dumps(config) if config is not None else b""

    def _configs(self):
        # The sensors' (topic, config), made one at a time while they are sent; config None: the
        # sensor is removed.
        for topic in self._gone:
            yield topic, None
        self._gone = []
        for item in self._diagnostic_configs():
            yield item
        t = self._latest
        if t is not None:
            rendered = None
            if t.rendered:
                if self._waiting_for_name(ticks_ms()):
                    return                  # its ids would change once it names itself
                rendered = _header(t.data)
            # (a DSMR telegram's are read from its text: once per announcement, not per telegram)
            readings = t.readings()
            for item in self.configs(readings, rendered):
                yield item
            if self._view is not None and self._view.history is not None:
                for item in self.peak_configs(readings, rendered):
                    yield item

    def _waiting_for_name(self, now):
        """For a DLMS meter: True while its identifier may still come (some lists carry none);
        False once the wait is over without it; None when it has named itself (or is DSMR)."""
        t = self._latest
        if self._first_ms is None or t is None or not t.rendered or identifier(t.readings()):
            return None                     # (a DSMR telegram: its readings come from its text)
        return ticks_diff(now, self._first_ms) < NAME_WAIT_MS

    def configs(self, readings, rendered=None):
        """(topic, config) of the discovery configs for the readings, made one at a time."""
        device = meter_device(readings, self.node, self.dongle["ids"], rendered)
        ident = "%s_%s" % (self.node, slug(meter_id(readings)))
        availability = [{"t": self.prefix + "/status"}, {"t": self.prefix + "/meter"}]
        seen = []
        for row, value in readings:
            name = row[obis.NAME]
            if name in seen:
                continue
            try:
                config = self._config(readings, row, value, device, ident, availability)
                if config is None:
                    continue
            except MemoryError:
                raise                       # the client counts it and lets go of what waits
            except Exception as e:   # noqa: BLE001 - a reading we cannot describe costs its config only
                self.log("p1dongle: no Home Assistant config for %s: %r" % (name, e))
                continue
            seen.append(name)
            yield self._topic(name), config

    def peak_configs(self, readings, rendered=None):
        """(topic, config) of the dongle's peaks (PEAKS) as sensors on the meter's device."""
        device = meter_device(readings, self.node, self.dongle["ids"], rendered)
        ident = "%s_%s" % (self.node, slug(meter_id(readings)))
        for key, label, device_class, state_class in PEAKS:
            config = self._sensor(label, "p1dongle_%s_peaks_%s" % (ident, key), "/peaks",
                                  "{{ value_json['%s'] }}" % key, device, "W" if device_class == "power" else None,
                                  device_class, state_class)
            config["avty"] = [{"t": self.prefix + "/status"}, {"t": self.prefix + "/meter"}]
            config["avty_mode"] = "all"
            yield self._topic("peaks_" + key), config

    def _config(self, readings, row, value, device, ident, availability):
        kind = row[obis.HA]
        if kind is None:
            return None
        device_class, state_class, units, convert = obis.ha_kind(kind)
        name = row[obis.NAME]
        numeric = kind not in ("text", "timestamp")
        if not isinstance(value, tuple if numeric else (str, tuple)) or (kind == "timestamp" and
                                                                          not isinstance(value, str)):
            return None                     # a number announced as one; text as it is; lists not
        shift = 0
        unit = None
        if numeric:
            unit = value[2]
            if unit == "m3":
                unit = "m³"
            if units is not None and unit not in units:
                shift = obis.unit_shift(unit, convert)
                if shift is None:
                    return None             # not in a unit Home Assistant takes for this kind
                unit = convert
        if kind == "gas" and _water(readings, name):
            device_class = "water"
        config = self._sensor(row[obis.LABEL], "p1dongle_%s_%s" % (ident, slug(name)), "/state",
                              _template(name, shift), device, unit, device_class, state_class)
        config["avty"] = availability
        config["avty_mode"] = "all"
        if numeric and row[obis.DECIMALS] - shift >= 0:
            config["sug_dsp_prc"] = row[obis.DECIMALS] - shift
        if not isinstance(value, tuple):
            config["ent_cat"] = "diagnostic"    # the meter's ids, version, clock
        return config

    def _diagnostic_configs(self):
        for key, label, device_class, state_class, unit in DIAGNOSTICS:
            if key not in self._diag_keys:
                continue
            config = self._sensor(label, "p1dongle_dongle_%s_%s" % (self.node, key), "/diagnostics",
                                  "{{ value_json['%s'] }}" % key, self.dongle, unit, device_class, state_class)
            config["avty_t"] = self.prefix + "/status"
            config["ent_cat"] = "diagnostic"
            yield self._topic("dongle_" + key), config

    def _sensor(self, label, unique_id, topic, template, device, unit, device_class, state_class):
        # What every sensor's config has: its name, ids (the entity id from the dongle and the
        # label: sensor.p1dongle_energy_import), where its value is, its device and classes.
        entity = "%s_%s" % (self.entity, entity_slug(label))
        config = {"name": label, "uniq_id": unique_id, "default_entity_id": "sensor." + entity, "obj_id": entity,
                  "stat_t": self.prefix + topic, "val_tpl": template, "dev": device, "o": self.origin}
        if unit:
            config["unit_of_meas"] = unit
        if device_class:
            config["dev_cla"] = device_class
        if state_class:
            config["stat_cla"] = state_class
        return config


def _water(readings, name):
    # M-Bus channel n says what it measures in mbus<n>DeviceType: 3 gas, 6 warm water, 7 water.
    if name.startswith("mbus") and len(name) > 4:
        kind = find(readings, "mbus" + name[4] + "DeviceType")
        return isinstance(kind, tuple) and kind[0] in (6, 7)
    return False


def _header(telegram):
    # the identification line of a telegram the dongle rendered, without its '/' and CR LF (what
    # its discovery says made it); telegram: a view of the backlog's bytes
    return bytes(telegram[1:line_end(telegram, 0, len(telegram))]).decode().rstrip("\r")
