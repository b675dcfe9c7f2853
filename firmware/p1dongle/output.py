# What the app asks of an output (a TCP port, MQTT, the web page and its API, and whatever comes
# next): one small contract, so that an output is one module and one line in app.OUTPUTS.
#
# A module in OUTPUTS has make(view) -> its outputs (a tuple; empty when the settings leave it
# off). view (app.View) is what an output may know of the app: the latest Telegram, the
# settings, the counters and status line, and the few things it may ask for. The app then, for
# each output:
#   start(host)      opens what it listens on (awaited once, before the meter is read)
#   telegram(t)      a telegram passed on (telegram.Telegram): publish it; never wait
#   frame(data)      a raw frame as it came from the meter (the raw port's)
#   tasks()          coroutines to run beside the meter's receive loop (MQTT's session, ...)
#   shed()           the heap is short: let go of what waits (queued telegrams, messages)
#   idle()           nothing queued is still to be sent (the input ended: drain)
#   stop()           closes everything (awaited; also after a failed start)
#   connected()      TCP clients connected, for the status line
#   status_part()    its piece of the status line (", mqtt connected"), or ""
#   start_part()     its piece of the start line ("web page on port 8080"), or ""
#   count(d)         adds its counters to the diagnostics d
#   report(d)        the diagnostics, made: pass them on (MQTT publishes them)
#   updating(u)      an update's progress (update.Updates): pass it on
# A MemoryError an output catches itself it counts with memory.lost(), as every part does.
# Outputs subclass Output and write only what they do.


class Output:
    name = "output"

    async def start(self, host):
        pass

    def telegram(self, t):
        pass

    def frame(self, data):
        pass

    def tasks(self):
        return ()

    def shed(self):
        pass

    def idle(self):
        return True

    async def stop(self):
        pass

    def connected(self):
        return 0

    def status_part(self):
        return ""

    def start_part(self):
        return ""

    def count(self, d):
        pass

    def report(self, d):
        pass

    def updating(self, updates):
        pass
