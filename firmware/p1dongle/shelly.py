# The Shelly face: the dongle answers as a Shelly Pro 3EM, the energy meter home batteries read
# to zero their feed-in (Marstek Venus, B2500, Jupiter), and Home Assistant's Shelly integration
# (aioshelly). Off unless the setting shelly is true. Gen2 RPC (shelly-api-docs.shelly.cloud/gen2),
# as such clients use it (docs/research/shelly-pro-3em.md has the sources):
#
#   UDP 1010 and 2220       {"id":1,"method":"EM.GetStatus","params":{"id":0}} -> the JSON-RPC frame
#                           {"id":1,"src":"shellypro3em-<mac>","dst":"unknown","result":{...}} to
#                           the sender (Marstek: 1010 for the Venus and the older B2500, 2220
#                           for a B2500 from firmware 226)
#   GET  /shelly            the device info (Shelly.GetDeviceInfo)
#   GET  /rpc/<Method>      the bare result (?id=0 for EM and EMData)
#   POST /rpc               a JSON-RPC frame -> the frame with the result
#   GET  /rpc (WebSocket)   JSON-RPC frames both ways (aioshelly), and NotifyStatus after a telegram
#                           (websocket.py)
#
# Values are the latest readings (telegram.py), as every output reads them, in a Shelly's units:
# W, VA, V, A, Hz, Wh; import positive, export negative (a_act_power = import L1 - export L1).
# A value the meter does not send is left out, but the four active powers are always there (a
# battery reads them): a meter that sends no power per phase has its total on phase a, and a
# phase it has not got 0.0, as a Shelly wired to one phase shows. Every number is written from
# the reading's own digits with a decimal point, never rounded: a Marstek B2500 crashes on a
# power written as an integer (uni-meter #236).
import json

from . import udp
from .compat import const, ticks_diff, ticks_ms
from .output import Output
from .reading import added, find, fixed, in_unit, net, register_total

MODEL = "SPEM-003CEBEU"
# A Pro 3EM's firmware of 2023-12-19: Home Assistant wants one from 2023-08-03 or later (aioshelly
# GEN2_MIN_FIRMWARE_DATE), and before 2024-02-13 it does not ask for dynamic components
FW_ID = "20231219-134001/1.1.0-g34b5d4f"
VERSION = "1.1.0"
STALE_MS = const(30000)     # no telegram for this long: the meter is gone (a meter sends every 1-10 s)
_MAX = const(256)           # a request datagram's bytes (a battery's is ~50): each read allocates it
_PHASES = ("a", "1"), ("b", "2"), ("c", "3")
# em:0's per-phase fields: (Shelly's, the reading, Shelly's unit)
_PER_PHASE = (("current", "currentL", "A"), ("voltage", "voltageL", "V"), ("pf", "powerFactorL", None))
METHODS = ("Shelly.GetDeviceInfo", "Shelly.GetStatus", "Shelly.GetConfig", "Shelly.ListMethods",
           "EM.GetStatus", "EM.GetConfig", "EMData.GetStatus", "EM1.GetStatus", "Sys.GetStatus",
           "WiFi.GetStatus")
EM_CONFIG = '{"id":0,"name":null,"blink_mode_selector":"active_energy","phase_selector":"all",' \
            '"monitor_phase_sequence":false,"ct_type":"120A"}'


def device_id(serial):
    """A Pro 3EM's id: shellypro3em- and its MAC in lower-case hex (also its mDNS name)."""
    return "shellypro3em-" + serial.lower()


def ascii_json(text):
    """A value (a string: any text) as JSON in ASCII (\\u escapes): an answer's length is then its bytes'."""
    out = json.dumps(text)
    if all(ord(c) < 128 for c in out):
        return out
    parts = []
    for c in out:
        n = ord(c)
        if n < 128:
            parts.append(c)
        elif n < 0x10000:
            parts.append("\\u%04x" % n)
        else:
            n -= 0x10000
            parts.append("\\u%04x\\u%04x" % (0xD800 + (n >> 10), 0xDC00 + (n & 0x3FF)))
    return "".join(parts)


def device_info(serial, name):
    return ('{"name":%s,"id":"%s","mac":"%s","slot":0,"model":"%s","gen":2,"fw_id":"%s","ver":"%s",'
            '"app":"Pro3EM","auth_en":false,"auth_domain":null,"profile":"triphase"}') % (
        ascii_json(name), device_id(serial), serial.upper(), MODEL, FW_ID, VERSION)


def mdns_txt(serial):
    """The TXT items a Shelly announces on _shelly._tcp and _http._tcp."""
    return (("gen", "2"), ("id", device_id(serial)), ("app", "Pro3EM"), ("model", MODEL),
            ("ver", VERSION), ("fw_id", FW_ID), ("arch", "esp32"), ("mac", serial.upper()))


def decimal(value):
    """(mantissa, exponent) as JSON with a decimal point and every digit: (2301, -1) -> '230.1',
    (5, 0) -> '5.0', (-1234, -3) -> '-1.234'."""
    return fixed(value[0], value[1], max(1, -value[1]))


def powers(readings):
    """([a, b, c], total) active powers in W, import minus export, from the readings; a meter that
    sends no power per phase has its total on phase a, a phase it has not got 0; None when the
    meter sends no power at all (no number is better than a made-up 0 for a battery)."""
    per = [net(readings, "currentUsageL" + n, "currentDeliveryL" + n, "W") for _, n in _PHASES]
    total = net(readings, "currentUsage", "currentDelivery", "W")
    known = [p for p in per if p is not None]
    if not known:
        if total is None:
            return None
        per[0] = total
    elif total is None:
        total = added(known)
    return [p if p is not None else (0, 0) for p in per], total


# em:0 with no telegram from the meter for STALE_MS, or none with a power: no values, the error a
# Shelly gives when its meter fails (a battery then stops steering by it)
NO_METER = '{"id":0,"errors":["power_meter_failure"]}'


def em_status(readings):
    """EM.GetStatus's result (em:0): per phase and total, from the readings ([(row, value)])."""
    found = powers(readings) if readings else None
    if found is None:
        return NO_METER
    per, total = found
    out = ['"id":0']
    frequency = in_unit(find(readings, "frequency"), "Hz")
    currents = []
    for (p, n), power in zip(_PHASES, per):
        for field, name, unit in _PER_PHASE:
            value = in_unit(find(readings, name + n), unit)
            if value is not None:
                out.append('"%s_%s":%s' % (p, field, decimal(value)))
                if field == "current":
                    currents.append(value)
        out.append('"%s_act_power":%s' % (p, decimal(power)))
        if frequency is not None:
            out.append('"%s_freq":%s' % (p, decimal(frequency)))
    if currents:
        out.append('"total_current":' + decimal(added(currents)))
    out.append('"total_act_power":' + decimal(total))
    apparent = net(readings, "currentApparentUsage", "currentApparentDelivery", "VA")
    if apparent is not None:
        out.append('"total_aprt_power":' + decimal((abs(apparent[0]), apparent[1])))
    return "{" + ",".join(out) + "}"


def emdata_status(readings):
    """EMData.GetStatus's result (emdata:0): the energy totals in Wh, returned (exported) positive."""
    readings = readings or ()
    out = ['"id":0']
    for field, total, tariff in (("total_act", "totalImportedEnergyP", "totalImportedEnergyT"),
                                 ("total_act_ret", "totalExportedEnergyP", "totalExportedEnergyT")):
        value = register_total(readings, total, tariff, "Wh")
        if value is not None:
            out.append('"%s":%s' % (field, fixed(value[0], value[1], max(2, -value[1]))))
    return "{" + ",".join(out) + "}"


class Face:
    """The Gen2 RPC calls of the face, answered from an app's View. An answer is a list of pieces
    of text, each a few hundred bytes at most, which the web server and the WebSocket send one by
    one: no answer needs one block of the heap as long as itself (Shelly.GetStatus is 1 KB)."""

    def __init__(self, view):
        self.view = view
        self.serial = view.serial
        self.name = view.cfg["device_id"] + " Shelly"   # not the MQTT device's name (no _2 ids in HA)

    def fresh(self):
        """A telegram came from the meter within STALE_MS: its values may steer a battery."""
        t = self.view.latest
        return t.data is not None and 0 <= ticks_diff(ticks_ms(), t.at) < STALE_MS

    def call(self, method, params=None):
        """The result of a call (pieces of JSON text); an error as Shelly gives it: (code, message)."""
        if method in ("EM.GetStatus", "EMData.GetStatus", "EM.GetConfig", "EM1.GetStatus"):
            which = params.get("id", 0) if isinstance(params, dict) else 0
            if which != 0:
                return -105, "Argument 'id', value %s not found!" % ascii_json(which)
        if method == "EM.GetStatus":
            return [em_status(self._live())]
        if method == "EM1.GetStatus":
            found = powers(self._live() or ())
            return [('{"id":0,"act_power":%s}' % decimal(found[1])) if found else NO_METER]
        if method == "EMData.GetStatus":
            return [emdata_status(self.view.latest.readings())]
        if method == "EM.GetConfig":
            return [EM_CONFIG]
        if method == "Shelly.GetDeviceInfo":
            return [device_info(self.serial, self.name)]
        if method == "Shelly.GetStatus":
            readings = self.view.latest.readings()
            return ['{"sys":', self._sys(), ',"wifi":', self._wifi(), ',"em:0":',
                    em_status(readings if self.fresh() else None), ',"emdata:0":', emdata_status(readings), "}"]
        if method == "Shelly.GetConfig":
            return ['{"sys":{"device":{"name":%s,"mac":"%s","fw_id":"%s","discoverable":true}},'
                    % (ascii_json(self.name), self.serial.upper(), FW_ID),
                    '"wifi":{},"em:0":', EM_CONFIG, ',"emdata:0":{}}']
        if method == "Shelly.ListMethods":
            return [json.dumps({"methods": METHODS})]
        if method == "Sys.GetStatus":
            return [self._sys()]
        if method == "WiFi.GetStatus":
            return [self._wifi()]
        return 404, "No handler for %s" % method

    def frame(self, request):
        """A JSON-RPC request frame (a dict) -> the answer frame (pieces), or None when it is no
        request (a notification: no id)."""
        method = request.get("method")
        if "id" not in request or not isinstance(method, str):
            return None
        src = request.get("src")
        result = self.call(method, request.get("params"))
        head = '{"id":%s,"src":"%s","dst":%s,' % (ascii_json(request["id"]), device_id(self.serial),
                                                   ascii_json(src if isinstance(src, str) else "unknown"))
        if isinstance(result, tuple):
            return [head, '"error":{"code":%d,"message":%s}}' % (result[0], ascii_json(result[1]))]
        return [head, '"result":'] + result + ["}"]

    def _live(self):
        # the readings, while they are fresh
        return self.view.latest.readings() if self.fresh() else None

    def notify(self, dst):
        """NotifyStatus with em:0 and emdata:0, for a WebSocket client (its src as dst)."""
        readings = self.view.latest.readings()
        return ['{"src":"%s","dst":%s,"method":"NotifyStatus","params":{"ts":%d,"em:0":' % (
                    device_id(self.serial), ascii_json(dst), self.view.uptime()),
                em_status(readings), ',"emdata:0":', emdata_status(readings), "}}"]

    def _sys(self):
        return '{"mac":"%s","restart_required":false,"uptime":%d,"available_updates":{}}' % (
            self.serial.upper(), self.view.uptime())

    def _wifi(self):
        info = self.view.info() if self.view.info else {}
        rssi = info.get("wifi_rssi")
        return '{"sta_ip":%s,"status":"got ip"%s}' % (
            json.dumps(info.get("ip")), ',"rssi":%d' % rssi if rssi is not None else "")


def make(view):
    if not view.cfg.get("shelly"):
        return ()
    return (UdpFace(Face(view), view.log, view.cfg["shelly_udp"]),)


class UdpFace(Output):
    """The JSON-RPC over UDP that batteries poll, on ports (the setting shelly_udp): each request
    datagram answered to its sender; one that is not a request is counted and dropped. A port
    that cannot be had (in use; below 1024 for a PC's user) is said once and left."""
    name = "shelly"

    def __init__(self, face, log=print, ports=(1010, 2220)):
        self.face = face
        self.log = log
        self.ports = ports
        self.socks = []
        self.answered = 0
        self.ignored = 0

    async def start(self, host):
        import socket
        for port in self.ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                # every address: a Marstek finds its meter by a broadcast to the subnet
                s.bind(socket.getaddrinfo("0.0.0.0", port)[0][-1])
            except OSError as e:
                s.close()
                self.log("shelly: udp %d: %r" % (port, e))
                continue
            s.setblocking(False)
            self.socks.append(s)

    def tasks(self):
        return tuple(udp.serve(s, self._reply, self, _MAX, "shelly", self.log) for s in self.socks)

    def start_part(self):
        return "shelly" + (" (udp %s)" % "/".join(str(p) for p in self.ports) if self.ports else "")

    def count(self, d):
        d["shelly_answered"] = self.answered

    async def stop(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def _reply(self, sock, data, peer):
        answer = self.answer(data)
        if answer is None:
            return False
        sock.sendto(answer, peer)
        self.answered += 1
        return True

    def answer(self, data):
        """A request datagram's answer datagram (bytes: an EM.GetStatus is ~400), or None: also
        while the meter is silent (STALE_MS), so that a battery sees its meter gone, as when a
        Shelly is off, and stops steering by the last power it had."""
        if not self.face.fresh():
            return None
        try:
            request = json.loads(data)
        except ValueError:
            return None
        pieces = self.face.frame(request) if isinstance(request, dict) else None
        return "".join(pieces).encode() if pieces else None
