"""A host on the home network that answers for its .local name (a Home Assistant box, the MQTT
broker): zeroconf registers a service whose host is NAME.local at ADDRESS, says "announced", and
answers until its input closes. test_faces.py runs it in the home's network namespace.

    python announce.py INTERFACE_IP NAME
"""
import socket
import sys

from zeroconf import IPVersion, ServiceInfo, Zeroconf


def main(address, name):
    zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    info = ServiceInfo("_mqtt._tcp.local.", "%s._mqtt._tcp.local." % name, port=1883,
                       addresses=[socket.inet_aton(address)], server="%s.local." % name)
    zc.register_service(info)
    print("announced", flush=True)
    sys.stdin.read()
    zc.unregister_service(info)
    zc.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
