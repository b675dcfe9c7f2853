"""What a home network's mDNS browser sees: zeroconf (the library Home Assistant discovers with)
browses the service types given and prints each instance found as a JSON line (type, name, host,
port, addresses, TXT). test_faces.py runs it in the home's network namespace.

    python browse.py INTERFACE_IP TIMEOUT_S _hwenergy._tcp.local. [_shelly._tcp.local. ...]
"""
import asyncio
import json
import sys
import time

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf


async def main(interface, timeout, types):
    azc = AsyncZeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    found = {}

    def changed(zeroconf, service_type, name, state_change):
        found.setdefault(service_type, set()).add(name)

    browser = AsyncServiceBrowser(azc.zeroconf, types, handlers=[changed])
    deadline = time.monotonic() + timeout
    while len(found) < len(types) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for kind in types:
        for name in sorted(found.get(kind, ())):
            info = AsyncServiceInfo(kind, name)
            ok = await info.async_request(azc.zeroconf, 3000)
            print(json.dumps({"type": kind, "name": name, "resolved": bool(ok), "server": info.server,
                              "port": info.port, "addresses": info.parsed_addresses(),
                              "properties": {k.decode(): (v.decode() if v is not None else None)
                                             for k, v in (info.properties or {}).items()}}), flush=True)
    await browser.async_cancel()
    await azc.async_close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3:]))
