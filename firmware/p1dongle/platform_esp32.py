# The target is the dongle: the meter's bytes come from the UART (inverted RX), the network is
# Wi-Fi. The only module that imports machine and network.
import asyncio

import network
from machine import UART, Pin

from .sources import parse_source

_PARITY = {None: None, "even": 0, "odd": 1}


class UartSource:
    def __init__(self, u):
        if u["request_pin"] is not None:
            Pin(u["request_pin"], Pin.OUT, value=1)     # P1 data request: the meter sends while high
        self.uart = UART(u["id"], baudrate=u["baud"], bits=u["bits"], parity=_PARITY[u["parity"]],
                         stop=u["stop"], rx=u["rx"], rxbuf=u["rxbuf"], timeout=0,
                         invert=UART.INV_RX if u["invert"] else 0)
        self.stream = asyncio.StreamReader(self.uart)
        self.name = "uart%d rx=GPIO%d %d baud" % (u["id"], u["rx"], u["baud"])

    def describe(self):
        return self.name

    async def readinto(self, buf):
        while True:
            n = await self.stream.readinto(buf)
            if n:
                return n

    async def close(self):
        pass


def make_source(cfg, log=print):
    if cfg["source"] == "uart":
        return UartSource(cfg["uart"])
    return parse_source(cfg["source"], log)


def start_network(cfg, log=print):
    """Start joining the Wi-Fi; the UART and the app run meanwhile."""
    wifi = cfg["wifi"]
    if not wifi:
        log("p1dongle: no wifi settings; serving nothing until they are set")
        return
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(wifi["ssid"], wifi.get("password", ""))
    log("p1dongle: joining Wi-Fi %s" % wifi["ssid"])
