# When the dongle is its own access point (p1dongle-XXXX, the first setup's captive portal): when
# it has no Wi-Fi settings, and when it has not been on its network for AP_AFTER_MS (a new router,
# a changed password: the user can reach its settings again without a PC). Joining the network
# again closes the access point. Pure logic, so that it runs on the host too; the platform
# (platform_esp32) switches the radio.
from .compat import ticks_diff

AP_AFTER_MS = 5 * 60 * 1000


def name(mac):
    """The dongle's name on the air and on the network (mDNS: <name>.local): p1dongle and the last
    four hex digits of its MAC address."""
    return "p1dongle-%02x%02x" % (mac[-2], mac[-1])


class WifiPlan:
    def __init__(self, ssid, now):
        self.ssid = ssid
        self._down_since = now          # the dongle starts off the network

    def access_point(self, connected, now):
        """Whether the access point should be up now, given whether the station is connected."""
        if not self.ssid:
            return True
        if connected:
            self._down_since = None
            return False
        if self._down_since is None:
            self._down_since = now
        return ticks_diff(now, self._down_since) >= AP_AFTER_MS
