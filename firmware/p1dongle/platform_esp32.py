# The target is the dongle: the meter's bytes come from the UART (inverted RX), the network is
# Wi-Fi. The only module that imports machine and network.
import asyncio
import time

import machine
import network
import os
from machine import UART, Pin

from . import config
from .chips import uart_pins
from .compat import native_gcm, ticks_add, ticks_diff, ticks_ms
from .errors import ConfigError
from .sources import parse_source
from .wifiplan import WifiPlan, name

FIRST_SETUP = True      # no settings file yet: the web page (on its own access point) asks for them
SOURCES = config.SOURCE_KINDS["dongle"]

_PARITY = {None: None, "even": 0, "odd": 1}


class UartSource:
    def __init__(self, u):
        if u["request_pin"] is not None:
            Pin(u["request_pin"], Pin.OUT, value=1)     # P1 data request: the meter sends while high
        self.uart = UART(u["id"], baudrate=u["baud"], bits=u["bits"], parity=_PARITY[u["parity"]],
                         stop=u["stop"], rx=u["rx"], rxbuf=u["rxbuf"], timeout=0,
                         invert=UART.INV_RX if u["invert"] else 0)
        self.name = "uart%d rx=GPIO%d %d baud" % (u["id"], u["rx"], u["baud"])
        # The UART's own buffer (rxbuf, outside the heap) gathers a piece of the frame while the
        # app waits: a read then takes ~200 bytes at 115200 baud, not the few that an event
        # loop woken by every byte would get, each costing a pass through the pipeline.
        self.gather_ms = 20

    def describe(self):
        return self.name

    async def readinto(self, buf):
        uart = self.uart
        while True:
            waiting = uart.any()
            await asyncio.sleep_ms(self.gather_ms)
            if waiting:
                n = uart.readinto(buf)
                if n:
                    return n

    async def close(self):
        pass


def make_source(cfg, log=print):
    config.source_here(cfg["source"], SOURCES)     # no serial port here: a PC has them
    if cfg["source"] == "uart":
        u = cfg["uart"]
        try:
            return UartSource(u)
        except (ValueError, OSError) as e:
            raise ConfigError("uart %d on rx GPIO%d: %s (check the uart settings)" % (u["id"], u["rx"], e))
    return parse_source(cfg["source"], log)


def _mac():
    return network.WLAN(network.STA_IF).config("mac")


def defaults():
    """What the dongle calls itself unless told otherwise: p1dongle-XXXX (from its MAC); the UART
    and GPIO its chip takes for P1 (chips.py); whether it answers mDNS itself (OWN_MDNS)."""
    uart, rx = uart_pins(os.uname().machine)
    return {"device_id": name(_mac()), "uart": {"id": uart, "rx": rx}, "mdns": OWN_MDNS}


# The p1dongle image (the one with our _p1gcm module) is built without ESP-IDF's mDNS responder
# (boards/*/mpconfigboard.h), which holds port 5353 and announces the host name only: mdns.py
# answers instead. A stock image keeps its own, and the dongle is found by its address.
OWN_MDNS = native_gcm is not None


def serial():
    return "".join("%02x" % b for b in _mac())


def restart():
    machine.reset()


def start_network(cfg, log=print):
    """Start joining the Wi-Fi and say why the dongle last reset; the UART and the app run meanwhile.
    The dongle's name is its host name (mDNS: p1dongle-XXXX.local)."""
    log("p1dongle: reset cause: " + reset_cause())
    try:
        network.hostname(name(_mac()))
    except (AttributeError, OSError, ValueError) as e:
        log("p1dongle: host name not set: %r" % e)
    wifi = cfg["wifi"]
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wifi:
        log("p1dongle: no wifi settings: join the dongle's own network %s and open http://%s/"
            % (name(_mac()), AP_IP))
        return
    if not wlan.isconnected():
        wlan.connect(wifi["ssid"], wifi.get("password", ""))
    log("p1dongle: joining Wi-Fi %s" % wifi["ssid"])


AP_IP = "192.168.4.1"   # the ESP32's access point's own address (its DHCP hands out the rest)


def reset_cause():
    return _RESET_CAUSES.get(machine.reset_cause(), "unknown")


_RESET_CAUSES = {
    machine.PWRON_RESET: "power on", machine.HARD_RESET: "hard reset", machine.WDT_RESET: "watchdog (it hung)",
    machine.DEEPSLEEP_RESET: "deep sleep", machine.SOFT_RESET: "soft reset",
}


def info():
    """For the diagnostics topic: the Wi-Fi signal and address (the app adds the free heap itself)."""
    wlan = network.WLAN(network.STA_IF)
    rssi = ip = None
    if wlan.isconnected():
        try:
            rssi = wlan.status("rssi")
            ip = wlan.ifconfig()[0]
        except (OSError, ValueError):
            pass
    return {"wifi_rssi": rssi, "ip": ip, "reset_cause": reset_cause()}


_wdt = [None]  # type: list  # the hardware watchdog, once started (it cannot be stopped)


def save_status(path, line):
    # RTC memory: it survives a soft reset (tools/flash.py status reads it) and wears no flash.
    machine.RTC().memory(line.encode()[:1024])


def load_status(path):
    m = machine.RTC().memory()
    return bytes(m).decode() if m else None


_blinking = [None]  # type: list  # the identify blink in progress: asked again meanwhile, no second one


def identify(cfg):
    """HomeWizard's identify (Home Assistant's Identify button): the board's LED (led_pin) blinks
    for 5 s and is left as it was. False when the board has none set, or the pin takes no output
    (an input-only or flash pin)."""
    if cfg["led_pin"] is None:
        return False
    if _blinking[0] is not None and not _blinking[0].done():
        return True
    try:
        led = Pin(cfg["led_pin"], Pin.OUT)
    except (ValueError, OSError):
        return False
    _blinking[0] = asyncio.create_task(_blink(led, 10))
    return True


async def _blink(led, times):
    was = led.value()
    for _ in range(times):
        led.value(not was)
        await asyncio.sleep_ms(250)
        led.value(was)
        await asyncio.sleep_ms(250)


def on_started(app):
    """Tasks the dongle runs beside the app: keep Wi-Fi up, and the hardware watchdog. Made for
    every start: after an error main.py drops every task the old app left (compat.new_loop)."""
    asyncio.create_task(_keep_wifi(app))
    asyncio.create_task(_watchdog(app))


def wait(seconds):
    """Before the app starts again after an error: a pause, not a hang, so the watchdog is fed."""
    for _ in range(seconds):
        if _wdt[0] is not None:
            _wdt[0].feed()
        time.sleep(1)


async def _keep_wifi(app):
    # Rejoin with backoff (5 s doubling to 5 min) when the access point goes away; the UART and the
    # TCP server keep running all along, MQTT reconnects by itself once the network is back.
    # Without Wi-Fi settings, or off the network for 5 minutes, the dongle opens its own access
    # point with the captive portal (wifiplan.py); joining the network closes it. Checked every
    # 5 s, whatever the backoff, so the access point comes when it is due.
    wifi = app.cfg["wifi"]
    log = app.log
    wlan = network.WLAN(network.STA_IF)
    plan = WifiPlan(wifi["ssid"] if wifi else None, ticks_ms())
    portal = None
    delay = 5
    next_try = ticks_add(ticks_ms(), delay * 1000)
    while True:
        connected = wlan.isconnected()
        now = ticks_ms()
        want = plan.access_point(connected, now)
        try:
            if want and portal is None:
                portal = _open_portal(app)
            elif not want and portal is not None:
                _close_portal(app, portal)
                portal = None
        except OSError as e:        # the radio refused: tried again in 5 s
            log("p1dongle: access point: %r" % e)
        await asyncio.sleep(5)
        if not wifi or connected:
            delay = 5
            continue
        if ticks_diff(ticks_ms(), next_try) < 0:
            continue
        log("p1dongle: Wi-Fi %s lost, rejoining (next try in %d s)" % (wifi["ssid"], min(delay * 2, 300)))
        try:
            wlan.disconnect()
            wlan.connect(wifi["ssid"], wifi.get("password", ""))
        except OSError as e:
            log("p1dongle: Wi-Fi: %r" % e)
        delay = min(delay * 2, 300)
        next_try = ticks_add(ticks_ms(), delay * 1000)


def _open_portal(app):
    from .captive import DnsResponder
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(essid=name(_mac()), authmode=network.AUTH_OPEN)
    ip = ap.ifconfig()[0]
    dns = DnsResponder(ip, app.log).open("0.0.0.0", 53)
    task = asyncio.create_task(dns.serve())
    web = app.output("web")
    if web:
        web.setup = ip
    app.log("p1dongle: access point %s open: join it and open http://%s/settings" % (name(_mac()), ip))
    return ap, dns, task


def _close_portal(app, portal):
    ap, dns, task = portal
    task.cancel()
    dns.close()
    ap.active(False)
    web = app.output("web")
    if web:
        web.setup = None
    app.log("p1dongle: on the network again: access point closed")


async def _watchdog(app, timeout_ms=30000):
    # Fed only while the receive task is alive: a hung event loop or a dead RX task resets the
    # dongle after timeout_ms (the reset cause says "watchdog" at the next boot).
    if _wdt[0] is None:
        _wdt[0] = machine.WDT(timeout=timeout_ms)
    wdt = _wdt[0]
    while True:
        if app.receiving():
            wdt.feed()
        await asyncio.sleep(1)


def partitions():
    """The app slots of the image way of updating (update.py, ota.py)."""
    import esp32
    return esp32.Partition


def reboot():
    machine.reset()
