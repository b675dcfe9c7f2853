"""Two network namespaces joined by a veth pair: the dongle's side and the home's, for what needs a
network that is not loopback (mDNS multicast, a battery's UDP). Made by the test, gone after it;
nothing reaches the machine's own network.

    with Lan() as lan:
        lan.run_dongle([...])           # argv run in the dongle's namespace (a Proc)
        lan.home([...])                 # argv run in the home's namespace (subprocess.run)
        lan.dongle_ip, lan.home_ip
"""
import itertools
import os
import subprocess

import pytest

_COUNT = itertools.count(1)


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Lan:
    def __init__(self):
        n = next(_COUNT)
        tag = "%d-%d" % (os.getpid() % 100000, n)
        self.dongle_ns, self.home_ns = "p1d-d" + tag, "p1d-h" + tag
        subnet = 64 + (os.getpid() + n) % 128
        self.dongle_ip, self.home_ip = "10.213.%d.1" % subnet, "10.213.%d.2" % subnet

    def __enter__(self):
        try:
            for ns in (self.dongle_ns, self.home_ns):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", "p1d-veth0", "netns", self.dongle_ns, "type", "veth",
                "peer", "name", "p1d-veth1", "netns", self.home_ns)
            for ns, dev, ip in ((self.dongle_ns, "p1d-veth0", self.dongle_ip), (self.home_ns, "p1d-veth1", self.home_ip)):
                _ip("-n", ns, "addr", "add", ip + "/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
                _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        except (OSError, subprocess.CalledProcessError) as e:
            self.__exit__()
            pytest.fail("cannot make network namespaces (needs root and iproute2, as make test has): %s %s"
                        % (e, getattr(e, "stderr", "")))
        return self

    def __exit__(self, *exc):
        for ns in (self.dongle_ns, self.home_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def in_dongle(self, argv):
        return ["ip", "netns", "exec", self.dongle_ns, *argv]

    def in_home(self, argv):
        return ["ip", "netns", "exec", self.home_ns, *argv]
