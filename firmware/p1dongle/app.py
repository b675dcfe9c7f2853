# The dongle's program: source -> pipeline -> outputs (the TCP ports, MQTT, the web page and its
# API: output.py says what an output is; OUTPUTS lists them).
#
# The same App runs on the ESP32 (source: the UART), under the MicroPython unix port and under
# CPython (source: a TCP P1 reader, a file, a serial port or the emulated meter). It owns the
# counters and the status line. The RX loop never waits for an output: publishing only queues.
# Every output reads the same Telegram (telegram.py): the latest telegram and its readings (for
# a DLMS meter that pushes several lists, the latest of each reading). Its bytes are copied once
# into the Backlog (backlog.py), the buffer made once that the outputs send it from, however many
# of them wait for it.
import asyncio
import gc

from . import memory
from .backlog import Backlog
from .compat import heap, sleep_ms, ticks_diff, ticks_ms
from .pipeline import FRAME, PROBLEM, TELEGRAM, Pipeline
from .telegram import Telegram

# The outputs, in the order they are told of a telegram: each a module whose make(view) gives
# them (output.py). A new output is a module and its name here.
# Each output's module, and the setting that leaves it off when null or false (None: always on):
# a module that is off is not even imported, so that its code costs the heap nothing.
OUTPUTS = (("tcpserver", None), ("mqttout", "mqtt"), ("web", "http_port"), ("shelly", "shelly"),
           ("mdns", "mdns"))

# A heap figure is a full collection (milliseconds on the dongle, while the UART waits): one is
# measured at most this often and reused in between, whoever asks (a client that sends "status"
# in a loop, the status page every 3 s); the status line printed every status_interval measures.
HEAP_EVERY_MS = 5000


class View:
    """What an output may know of the app and ask of it: the latest telegram, the settings it runs
    with, the counters and the status line, the platform's info; a restart, a reset, an update's
    progress. Not the app itself: an output never reaches into another."""

    def __init__(self, app, settings, serial):
        self.cfg = app.cfg
        self.latest = app.latest
        self.backlog = app.backlog
        self.log = app.log
        self.info = app.info
        self.identify = app.identify
        self.updates = app.updates
        self.history = app.history  # history.History: hours, days, months and the peaks; or None
        self.settings = settings    # the settings file (the web page edits it), or None
        self.serial = serial        # the dongle's MAC as 12 hex digits
        self.status = app.status
        self.diagnostics = app.diagnostics
        self.uptime = app.uptime
        self.restart_soon = app.restart_soon
        self.reboot_soon = app.reboot_soon
        self.update_progress = app.update_progress
        self._app = app

    @property
    def heard(self):
        """The meter has sent something since the start."""
        return self._app.heard


def _make(name, view):
    module = __import__("p1dongle." + name, None, None, ("make",))
    return module.make(view)


class App:
    def __init__(self, cfg, source, log=print, info=None, save_status=None, settings=None, serial=None,
                 updates=None, identify=None, history_dir=None):
        self.cfg = cfg
        self.updates = updates    # update.Updates: receiving a new firmware, its probation; or None
        self.source = source
        self.log = log
        self.pipeline = Pipeline(cfg["key"], cfg["auth_key"], cfg["max_frame"], cfg["timeout_ms"],
                                 cfg["replay_check"], raw_frames=bool(cfg["raw_port"]), emit=self._event,
                                 layout=cfg.get("layout", "auto"), shared=True)
        # The telegrams the outputs may still send: as many bytes as the longest frame (a telegram
        # is not longer: three of Luxembourg's 1.1 KB, more of the Austrian meters'), 4 KB at the
        # least (a push's rendered text is longer than its frame), a slot for every telegram a
        # client or the broker may fall behind (their queue_len) and two more. Twice that held
        # more for a stalled client, at a cost the 96 KB heap could not bear.
        mqtt = cfg["mqtt"]
        self.backlog = Backlog(max(cfg["max_frame"], 4096),
                               max(cfg["queue_len"], mqtt["queue_len"] if mqtt else 0) + 2)
        self.subscribers = []     # callables(telegram): the simulator's console; the telegram is a
                                  # view of the backlog, good during the call
        self.info = info          # () -> {"free_heap": ..., "wifi_rssi": ...} from the platform
        self.identify = identify  # (cfg) -> whether the board shows itself (its LED blinks), or None
        self.save_status = save_status  # (line) -> None: keep the last status line for flash.py
        self.latest = Telegram()  # the latest telegram passed on and its readings, for every output
        # The history kept in flash (history.py), beside the settings: one model that every
        # output reads, told of each telegram before they are. None: off, or nowhere to keep it.
        self.history = None
        if cfg.get("history", True) and history_dir is not None:
            from .history import History
            self.history = History(history_dir, log)
        self.restarting = False   # the settings changed: run() ends, main.py starts it again
        self.rebooting = False    # ... and the dongle resets (a new firmware, a failed probation)
        self.heard = False        # the meter has sent something since the start
        self._rx_task = None
        self._rxbuf = bytearray(512)   # every read from the meter lands here: no allocation per read
                                       # (512 B every 20 ms: twice 115200 baud; the UART's own buffer
                                       # outside the heap holds a burst)
        self.started = ticks_ms()
        self._up_ms = 0
        self._up_last = self.started
        self._receiving = False
        self._lost_before = memory.count()     # MemoryErrors are counted from here (memory.py)
        self.notice = None        # what the status line ends with (start.py: on the previous settings)
        self._heap_seen = None    # (used, free) as last measured, and when (ticks)
        self._heap_at = None
        view = View(self, settings, serial or "000000000000")
        self.outputs = []
        for name, setting in OUTPUTS:
            on = cfg.get(setting) if setting else True
            if on is not None and on is not False:      # (http_port 0 is on: any free port)
                self.outputs += _make(name, view)

    def output(self, name):
        """The output of that name ("plaintext", "raw", "mqtt", "web"), or None."""
        for out in self.outputs:
            if out.name == name:
                return out
        return None

    def uptime(self):
        """Seconds since start. Summed in steps: ticks_diff alone is only good for ~6 days on the
        ESP32 (its ticks wrap at 2**30 ms), and a P1 dongle runs for years."""
        now = ticks_ms()
        self._up_ms += ticks_diff(now, self._up_last)
        self._up_last = now
        return self._up_ms // 1000

    def status(self, fresh=False):
        up = self.uptime()
        h = self.heap_figure(fresh)
        heap_part = ", heap used %s KB, free %s KB" % (_kb(h[0]), _kb(h[1])) if h else ""
        lost = self.lost_to_memory()
        if lost:
            heap_part += ", memory errors %d" % lost
        return "up %dh%02dm%02ds, %s, clients %d%s%s%s" % (
            up // 3600, up // 60 % 60, up % 60, self.pipeline.status(), self._clients(),
            "".join(out.status_part() for out in self.outputs), heap_part, ", " + self.notice if self.notice else "")

    def heap_figure(self, fresh=False):
        """(bytes used, bytes free) after a collection (None on CPython): measured when fresh, or
        when the last figure is HEAP_EVERY_MS old, else that one again."""
        now = ticks_ms()
        if fresh or self._heap_at is None or not 0 <= ticks_diff(now, self._heap_at) < HEAP_EVERY_MS:
            self._heap_seen = heap()
            self._heap_at = now
        return self._heap_seen

    def lost_to_memory(self):
        """MemoryErrors since the start: each cost one frame, one output of one telegram, one MQTT
        connection or one request; none stopped the app."""
        return memory.count() - self._lost_before

    def _clients(self):
        n = 0
        for out in self.outputs:
            n += out.connected()
        return n

    def diagnostics(self):
        p = self.pipeline
        d = {"uptime": self.uptime(), "telegrams": p.telegrams,
             "tag_failures": p.auth_failures, "crc_failures": p.crc_failures, "replays": p.replays,
             "bad_frames": p.bad_frames, "dropped_bytes": sum(p.frames.dropped),
             "unauthenticated": p.unauthenticated, "tcp_clients": self._clients(),
             "mqtt_dropped": 0, "memory_errors": self.lost_to_memory(),
             "free_heap": None, "wifi_rssi": None}
        for out in self.outputs:
            out.count(d)
        h = self.heap_figure()
        if h:
            d["free_heap"] = h[1]
        if self.info:
            d.update(self.info())
        return d

    def update_progress(self, updates):
        """An update's progress (every tenth) or end: on the console and to the outputs (Home
        Assistant's update entity)."""
        pct = updates.percentage()
        if pct is not None:
            self.log("p1dongle: update to %s: %d%% of %d KB" % (updates.to or "?", pct, updates.size // 1024))
        for out in self.outputs:
            self._output(out.updating, updates)

    async def start(self):
        """Open the outputs' ports. Returns when they listen."""
        host = self.cfg["host"]
        for out in self.outputs:
            await out.start(host)
        parts = [part for part in (out.start_part() for out in self.outputs) if part]
        self.log("p1dongle: reading %s; %s%s" % (self.source.describe(), ", ".join(parts),
                                                 "" if self.cfg["key"] else " (no key: plain DSMR meters only)"))

    async def run(self, on_started=None):
        """Open the ports, then move bytes until the source ends (a file) or forever (a meter).

        on_started(app) is called once the ports listen. Cancel the task to stop."""
        try:
            await self.start()
        except BaseException:
            # One port open and the other refused: close what opened, or a restart finds its own
            # port taken (EADDRINUSE) for ever.
            await self.stop()
            raise
        if on_started:
            on_started(self)
        ticker = asyncio.create_task(self._status_loop()) if self.cfg["status_interval"] else None
        probation = asyncio.create_task(self._probation()) if self.updates and self.updates.trial else None
        tasks = []
        for out in self.outputs:
            for job in out.tasks():
                tasks.append(asyncio.create_task(job))
        self._rx_task = asyncio.create_task(self._rx())
        try:
            try:
                await self._rx_task
            except asyncio.CancelledError:
                if not self.restarting:
                    raise
            if not self.restarting:
                await self.drain()
        finally:
            self._rx_task.cancel()
            if ticker:
                ticker.cancel()
            if probation:
                probation.cancel()
            await self.stop()
            for task in tasks:
                task.cancel()

    async def goodbye(self):
        """A stop from outside the loop (Ctrl-C): MQTT says offline, the ports close."""
        try:
            await self.stop()
        except Exception as e:   # noqa: BLE001 - stopping anyway
            self.log("p1dongle: stopping: %r" % e)

    async def stop(self):
        for out in self.outputs:
            await out.stop()
        await self.source.close()

    def release(self):
        """The app has ended: let go of all it holds (its buffers, servers, clients, pipeline).
        Should anything still reach this object (under load the twin's restart test found the
        old app's 60 KB kept beside the new one's now and then, through a path not found), it
        holds nothing: the next app finds the heap it needs."""
        for name in list(self.__dict__):
            setattr(self, name, None)

    def restart_soon(self):
        """New settings: end run() once the answer that says so has gone out."""
        asyncio.create_task(self._restart())

    def reboot_soon(self):
        """A new firmware waits to boot: end run(), then start.py resets the dongle."""
        self.rebooting = True
        asyncio.create_task(self._restart())

    async def _probation(self):
        # A new firmware proves itself (update.py) or, past its deadline, the dongle resets and
        # the previous one boots again.
        updates = self.updates
        while updates.trial:
            await asyncio.sleep(1)
            if updates.overdue():
                self.reboot_soon()
                return

    async def _restart(self):
        await asyncio.sleep(0.5)
        self.restarting = True
        if self._rx_task is not None:
            self._rx_task.cancel()

    def receiving(self):
        """The receive task is running (the watchdog feeds only then)."""
        return self._receiving

    async def _rx(self):
        self._receiving = True
        try:
            await self._rx_loop()
        finally:
            self._receiving = False

    async def _rx_loop(self):
        pipe = self.pipeline
        while True:
            n = await self.source.readinto(self._rxbuf)
            now = ticks_ms()
            self.uptime()           # summed here too, so it never misses a wrap without status lines
            if not n:
                pipe.flush(now)
                self.log("p1dongle: end of input; " + self.status())
                return
            self.heard = True
            before = memory.count()
            try:
                pipe.push(self._rxbuf, now, n)
            except MemoryError:             # the pipeline guards its frames; this is a last guard
                memory.lost(self.log, "p1dongle: out of memory while reading")
            if memory.count() != before:
                self._relieve()

    def _relieve(self):
        """Out of memory: let go of what waits (telegrams queued for clients that fell behind,
        MQTT messages for a broker that is away), so that the next telegram finds room. Else a
        client that stopped reading could hold the heap, and no telegram would come to drop it."""
        for out in self.outputs:
            out.shed()
        self.latest.release()
        gc.collect()

    def readings(self):
        """The readings every output publishes [(row, value)], or None before the first telegram."""
        return self.latest.readings()

    def _output(self, out, what):
        try:
            out(what)
        except MemoryError:                 # this output loses this telegram; the next one comes
            memory.lost()
            self._relieve()
            memory.say(self.log, "p1dongle: out of memory, an output lost a telegram")
        except Exception as e:   # noqa: BLE001 - a broken output must not stop the meter
            self.log("p1dongle: output failed: %r" % e)

    def _event(self, kind, pos, what, has_crc):
        if kind == TELEGRAM:
            if self.updates is not None and self.updates.trial:
                self.updates.proven("a telegram passed on")
            try:
                number = self.backlog.put(what)
            except ValueError as e:     # longer than the backlog (a rendered push, in theory)
                self.log("offset %d: %s: not passed on" % (pos, e))
                return
            self.latest.take(self.backlog.latest, self.pipeline.readings, number=number)
            if self.history is not None:
                self._output(self.history.telegram, self.latest)
            for out in self.outputs:
                self._output(out.telegram, self.latest)
            for sub in self.subscribers:
                self._output(sub, self.latest.data)
        elif kind == FRAME:
            for out in self.outputs:
                self._output(out.frame, what)
        elif kind == PROBLEM:
            try:
                self.log("offset %d: %s" % (pos, what))
            except MemoryError:
                pass                        # the counters still say it

    async def drain(self, limit_ms=5000):
        """Give the clients a moment to receive what is queued for them (the input ended)."""
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < limit_ms and not all(out.idle() for out in self.outputs):
            await sleep_ms(20)

    async def _status_loop(self):
        while True:
            await asyncio.sleep(self.cfg["status_interval"])
            try:
                self._report()
            except MemoryError:             # this status line is lost; the next one comes
                memory.lost(self.log, "p1dongle: out of memory, a status line lost")

    def _report(self):
        line = self.status(fresh=True)
        self.log("status: " + line)
        if self.save_status:
            try:
                self.save_status(line)
            except OSError as e:
                self.log("p1dongle: status not saved: %r" % e)
        d = self.diagnostics()
        for out in self.outputs:
            out.report(d)


def _kb(n):
    # 1 decimal, from integers (no float on the dongle's value paths, and none needed here)
    return "%d.%d" % (n // 1024, n % 1024 * 10 // 1024)
