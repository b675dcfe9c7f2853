# The heap MqttOutput keeps for a DLMS meter's readings, on the dongle twin (the latest of each
# reading: meters that push several lists send each in turn). Run as
#   micropython -X heapsize=96K host_tests/values_heap.py PUSHES
# it feeds the output one push with every quantity of the OBIS table (all four M-Bus channels),
# then PUSHES pushes of 8 codes never seen before each (noise a plain HDLC FCS lets through),
# and prints the heap in use after each stage, and how many readings the last state holds, as JSON.
import gc
import json
import sys

from p1dongle import obis
from p1dongle.mqtt import MqttClient
from p1dongle.mqttout import MqttOutput
from p1dongle.telegram import Telegram


def table_readings():
    out = []
    for row in obis.ROWS:
        code = row[obis.CODE]
        for channel in ("1", "2", "3", "4") if code.startswith("0-n:") else ("",):
            if channel:
                code = channel.join(code.split("n", 1))
            if code != "/":
                out.append((obis.row(code), (12345678, -3, row[obis.UNIT])))
    return out


def heap():
    gc.collect()
    return gc.mem_alloc()


def main():
    pushes = int(sys.argv[1])
    telegram = b"/DLM5\r\n\r\n!0000\r\n"
    client = MqttClient("127.0.0.1", 1, "heap", log=lambda line: None)
    out = MqttOutput(client, "p1dongle/heap", "homeassistant", "heap", log=lambda line: None)
    table = table_readings()
    latest = Telegram()
    start = heap()
    latest.take(telegram, table)
    out.telegram(latest)
    after_table = heap()
    peak = 0
    for i in range(pushes):
        noise = [(obis.row("1-0:%d.%d.%d" % (200 + k, i >> 8 & 255, i & 255)), (i, 0, None)) for k in range(8)]
        latest.take(telegram, table[:3] + noise)
        out.telegram(latest)
        del noise
        if i % 64 == 63:
            peak = max(peak, heap())
    print(json.dumps({"start": start, "after_table": after_table, "peak": peak, "end": heap(),
                      "state_readings": len(latest.readings()), "table_readings": len(table)}))


main()
