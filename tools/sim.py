#!/usr/bin/env python3
"""p1dongle on a PC: the dongle's own firmware modules, fed from files and streams.

  decrypt   turn a raw capture of a meter's P1 output into the plain DSMR telegrams in it
  run       the dongle's program: a source (emulated meter, file, TCP P1 reader, serial port)
            in, plain telegrams out on a TCP port (telnet, Home Assistant)
  meter     an emulated meter (Luxembourg or an Austrian family) behind an Ethernet P1 reader
"""
import argparse
import asyncio
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))

from p1dongle import config, meters, platform_host, reading  # noqa: E402
from p1dongle.app import App  # noqa: E402
from p1dongle.dlms import LUX_AUTH_KEY, parse_key  # noqa: E402
from p1dongle.errors import ConfigError  # noqa: E402
from p1dongle.pipeline import TELEGRAM, Pipeline  # noqa: E402

import emulator  # noqa: E402
from broker import LocalBroker  # noqa: E402

KEY_ENV = "P1DONGLE_KEY"
DEMO_KEY = "0123456789ABCDEF0123456789ABCDEF"   # the demo meter's key: never a real meter's
AUTH_KEY_ENV = "P1DONGLE_AUTH_KEY"
MQTT_PASSWORD_ENV = "P1DONGLE_MQTT_PASSWORD"
WEB_PASSWORD_ENV = "P1DONGLE_WEB_PASSWORD"
CHUNK = 4096
_SEPARATORS = " \t\r\n:,-"
_HEXDIGITS = "0123456789abcdefABCDEF"


KEY_ONLY = "none"      # --auth-key none: decrypt without checking tags (never the default)


def iso_seconds(text):
    """An ISO 8601 time with its offset -> UTC seconds (argparse type)."""
    import datetime
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an ISO 8601 time: %r" % text)
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time's offset, e.g. %s+01:00" % text)
    return t.timestamp()


def key_type(what, none_ok=False):
    def parse(text):
        if none_ok and text.strip().lower() == KEY_ONLY:
            return KEY_ONLY
        try:
            return parse_key(text, what)
        except ConfigError as e:
            # ArgumentTypeError prints only our message, never the value that was given.
            raise argparse.ArgumentTypeError(str(e))
    return parse


class HexDecoder:
    """Hex text to bytes, chunk by chunk: whitespace, ':', ',', '-' and 0x prefixes are ignored."""

    def __init__(self):
        self._odd = ""
        self.chars = 0

    def decode(self, text):
        digits = []
        for c in text.replace("0x", "  ").replace("0X", "  "):
            self.chars += 1
            if c in _HEXDIGITS:
                digits.append(c)
            elif c not in _SEPARATORS:
                raise ValueError("not hex text: %r at character %d (drop --hex for a binary capture)"
                                 % (c, self.chars))
        s = self._odd + "".join(digits)
        self._odd = s[len(s) & ~1:]
        return bytes.fromhex(s[:len(s) & ~1])

    def finish(self):
        if self._odd:
            raise ValueError("hex text ends with half a byte")
        return b""


def _chunks(path, as_hex):
    """Yield byte chunks of the input as they arrive (stdin works live from a pipe)."""
    if path == "-":
        stream = sys.stdin if as_hex else sys.stdin.buffer
        read = stream.readline if as_hex else stream.read1
        close = False
    else:
        stream = open(path, "r" if as_hex else "rb")
        read = stream.read
        close = True
    try:
        if as_hex:
            dec = HexDecoder()
            while True:
                text = read() if path == "-" else read(CHUNK)
                if not text:
                    dec.finish()
                    return
                yield dec.decode(text)
        else:
            while True:
                data = read(CHUNK)
                if not data:
                    return
                yield data
    finally:
        if close:
            stream.close()


def cmd_decrypt(args):
    out = sys.stdout.buffer

    def emit(kind, pos, what, has_crc):
        if kind == TELEGRAM:
            out.write(what)
            out.flush()
        else:
            print("offset %d: %s" % (pos, what), file=sys.stderr, flush=True)

    pipe = Pipeline(args.key, args.auth_key, max_frame=args.max_frame, timeout_ms=args.timeout_ms,
                    replay_check=not args.allow_replay, emit=emit, layout=meters.profile(args.meter)[4])
    try:
        for chunk in _chunks(args.input, args.hex):
            pipe.push(chunk, _now_ms())
        pipe.flush(_now_ms())
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            return 0 if pipe.telegrams else 1
        print("decrypt: cannot read %s: %s" % (args.input, e.strerror or e), file=sys.stderr)
        return 1
    except ValueError as e:
        pipe.flush(_now_ms())
        print("decrypt: %s" % e, file=sys.stderr)
        return 0 if pipe.telegrams else 1
    if args.verbose:
        print("decrypt: " + pipe.status(), file=sys.stderr)
    if pipe.telegrams:
        return 0
    if pipe.auth_failures:
        hint = ("every encrypted frame failed authentication: check --key and --auth-key "
                "(a utility that gives out no authentication key: --auth-key none)")
    elif pipe.frames.pos == 0:
        hint = "the input is empty"
    else:
        hint = "no frame found in %d bytes (is it a capture of the meter's P1 output?%s)" % (
            pipe.frames.pos, "" if args.hex else " if it is hex text, add --hex")
    print("decrypt: no telegram recovered: " + hint, file=sys.stderr)
    return 1


def _log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def _summary(n, telegram, readings):
    """One console line per telegram: what a user wants to see scroll by."""
    parts = ["telegram %d: %d bytes" % (n, len(telegram))]
    for name, label in (("powerTs", "at"), ("totalImportedEnergyP", "import"), ("totalImportedEnergyT1", "import T1"),
                        ("currentUsage", "using"), ("currentDelivery", "delivering")):
        v = reading.find(readings or [], name)
        if isinstance(v, tuple):
            parts.append("%s %s%s" % (label, reading.exact(v[0], v[1]), " " + v[2] if v[2] else ""))
        elif v:
            parts.append("%s %s" % (label, v))
    return ", ".join(parts)


def dsmr_version(profile):
    """What to pick in Home Assistant's DSMR integration for a meter profile: 5L for Luxembourg's
    meters and every meter whose DLMS values the dongle writes as a telegram (they carry 5L's
    identifier, 0-0:42.0.0); for a plain telegram, what the meter's country writes."""
    if profile == "sweden":
        return "5S"
    if profile == "auto":
        return "5L for Luxembourg and DLMS meters, 5 in the Netherlands, 5B in Belgium"
    return "5L"


def cmd_run(args):
    settings = {
        "key": args.key.hex() if args.key else None,
        "auth_key": args.auth_key.hex() if args.auth_key else KEY_ONLY,
        "meter": args.meter,
        "source": args.source,
        "host": args.host,
        "tcp_port": args.tcp_port,
        "raw_port": args.raw_port,
        "max_clients": args.max_clients,
        "status_interval": args.status_interval,
        "replay_check": not args.allow_replay,
        "device_id": args.device_id,
        "http_port": args.http_port if args.http_port >= 0 else None,
        "web_password": os.environ.get(WEB_PASSWORD_ENV) or None,
        "mdns": args.mdns,
        "shelly": args.shelly is not None,
        "shelly_udp": args.shelly or [],
    }
    broker = None
    if args.mqtt:
        host, port = args.mqtt, 1883
        if args.mqtt == "auto":
            # The demo shows MQTT too: a broker of our own on a free port, gone when we stop.
            try:
                broker = LocalBroker().start()
            except (RuntimeError, OSError) as e:
                print("run: cannot start a local MQTT broker: %s" % e, file=sys.stderr)
                return 1
            host, port = "127.0.0.1", broker.port
            _log("mqtt: started a local %s broker on 127.0.0.1:%d; watch it with:" % (broker.kind, port))
            if shutil.which("mosquitto_sub"):
                _log("  mosquitto_sub -h 127.0.0.1 -p %d -t 'p1dongle/#' -t 'homeassistant/#' -v" % port)
            else:
                _log("  %s -c \"import paho.mqtt.subscribe as s; s.callback(lambda c, u, m: print(m.topic, "
                     "m.payload[:70]), ['p1dongle/#', 'homeassistant/#'], hostname='127.0.0.1', port=%d)\""
                     % (sys.executable, port))
        elif ":" in args.mqtt:
            host, _, p = args.mqtt.rpartition(":")
            port = int(p) if p.isdigit() else -1
        settings["mqtt"] = {"host": host, "port": port, "user": args.mqtt_user,
                            "password": args.mqtt_password or os.environ.get(MQTT_PASSWORD_ENV)}
    try:
        return _run_with(args, settings)
    finally:
        if broker:
            broker.stop()


def _run_with(args, settings):
    if args.settings and os.path.exists(args.settings):
        # the settings the web page saved last time (the command line's emulated meter still feeds it)
        try:
            settings = config.read(args.settings)
        except ConfigError as e:
            print("run: " + str(e), file=sys.stderr)
            return 2
    store = config.Settings(settings, args.settings, kinds=config.SOURCE_KINDS["host"])
    try:
        cfg, source = _configure(args, store)
    except ConfigError as e:
        print("run: " + str(e), file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(args, cfg, source, store))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except OSError as e:
        print("run: %s" % (e.strerror or e), file=sys.stderr)
        return 1
    _log("stopped")
    return 0


def _configure(args, store, meter_port=None):
    """The checked settings and the source from the stored ones; with the emulated meter, the
    source is it, on meter_port (None: it does not listen yet, and there is no source yet).
    Raises ConfigError."""
    raw = store.raw
    if args.source == "meter":
        raw = dict(raw, source="tcp:127.0.0.1:%d" % (meter_port or 1))
        if not raw.get("key"):
            raw["key"] = DEMO_KEY                   # the emulated meter's own key
            args.key = args.key or bytes.fromhex(DEMO_KEY)
    cfg = config.check(raw)
    if args.source == "meter" and meter_port is None:
        return cfg, None
    return cfg, platform_host.make_source(cfg, _log)


async def _run(args, cfg, source, store):
    # `kill`, systemd, docker stop: stop as cleanly as on Ctrl-C.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    tasks = []
    meter_port = None
    if source is None:
        # The emulated meter is a real TCP server, like an Ethernet P1 reader; we connect to it.
        # (key-only mode: the meter still signs with the usual key; the dongle does not check)
        profile = args.meter if args.meter in emulator.PROFILES else "lux"
        meter = emulator.EmulatedMeter(args.key, args.auth_key or LUX_AUTH_KEY, faults=args.faults, profile=profile)
        listening = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(emulator.serve(meter, "127.0.0.1", 0, args.interval,
                                                     on_listen=listening.set_result))
        tasks.append(serving)
        await asyncio.wait([listening, serving], return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            serving.result()                      # what stopped the emulated meter, if it raised
            raise OSError("the emulated meter stopped before it listened")
        meter_port = listening.result()
        cfg, source = _configure(args, store, meter_port)
        _log("emulated meter: %s on 127.0.0.1:%d, a frame every %g s" % (
            emulator.describe(profile), meter_port, args.interval))
    dns = None
    try:
        while True:
            app = App(cfg, source, _log, settings=store, history_dir=_history_dir(args))
            if args.setup:
                dns = dns or _portal(args)
            if not await _run_app(args, app, dns):
                break
            # new settings from the web page: the app starts again with them, as on the dongle
            try:
                cfg, source = _configure(args, store, meter_port)
            except ConfigError as e:
                _log("run: " + str(e))
                break
            _log("restarting with the new settings")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if dns:
            dns[0].close()
            dns[1].cancel()


def _history_dir(args):
    """The folder the history files go in: --history, else beside --settings, else a temporary
    one for this run (made once, whatever the restarts)."""
    if args.history:
        os.makedirs(args.history, exist_ok=True)
        return os.path.join(args.history, "")
    if args.settings:
        return os.path.join(os.path.dirname(os.path.abspath(args.settings)), "")
    if not getattr(args, "_history_tmp", None):
        import atexit
        import tempfile
        args._history_tmp = tempfile.mkdtemp(prefix="p1dongle-history-")
        atexit.register(shutil.rmtree, args._history_tmp, True)
    return os.path.join(args._history_tmp, "")


def _portal(args):
    """--setup: the first setup's captive portal, as on the dongle's own access point: a DNS
    responder answering every name with 127.0.0.1 (on --dns-port), requests sent to the settings."""
    from p1dongle.captive import DnsResponder
    dns = DnsResponder("127.0.0.1", _log).open("127.0.0.1", args.dns_port)
    _log("setup: DNS on 127.0.0.1:%d answers every name with 127.0.0.1" % dns.port)
    return dns, asyncio.create_task(dns.serve())


async def _run_app(args, app, dns):
    """Run one app until it ends; True when it ended to start again with new settings."""
    cfg = app.cfg
    done = asyncio.get_running_loop().create_future()

    def on_telegram(telegram):
        n = app.pipeline.telegrams
        if not args.quiet:
            _log(_summary(n, telegram, app.readings()))
        if args.count and n >= args.count and not done.done():
            done.set_result(None)

    def on_started(app):
        port = app.output("plaintext").port
        raw, web = app.output("raw"), app.output("web")
        host = "localhost" if cfg["host"] in ("127.0.0.1", "0.0.0.0") else cfg["host"]
        _log("connect: telnet %s %d   (Home Assistant: DSMR integration, network, port %d, "
             "DSMR version %s)" % (host, port, port, dsmr_version(
                 (args.meter if args.meter in emulator.PROFILES else "lux") if args.source == "meter" else args.meter)))
        if raw:
            _log("raw frames: port %d" % raw.port)
        if web:
            _log("web: http://%s:%d/   (HomeWizard API: http://%s:%d/api/v1/data)" % (host, web.port, host, web.port))
            if dns:
                web.setup = "127.0.0.1:%d" % web.port

    app.subscribers.append(on_telegram)
    runner = asyncio.create_task(app.run(on_started))
    try:
        await asyncio.wait([runner, done], return_when=asyncio.FIRST_COMPLETED)
        if not runner.done():
            await app.drain()       # --count reached: let the clients have the last telegram
            runner.cancel()
        try:
            await runner
        except asyncio.CancelledError:
            pass
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        _log("status: " + app.status())
    return app.restarting


def cmd_meter(args):
    meter = emulator.EmulatedMeter(args.key or bytes.fromhex(DEMO_KEY), args.auth_key, faults=args.faults,
                                   profile=args.profile, start=args.start, step=args.step, seed=args.seed)
    if args.stdout:
        out = sys.stdout.buffer
        try:
            n = 0
            while not args.count or n < args.count:
                out.write(meter.next_bytes())
                out.flush()
                n += 1
                if not args.count or n < args.count:
                    time.sleep(args.interval)
        except (KeyboardInterrupt, BrokenPipeError):
            pass
        return 0

    def listening(port):
        _log("emulated meter: %s, a frame every %g s, on %s:%d (key %s)" % (
            emulator.describe(args.profile), args.interval, args.host, port, "given" if args.key else "the demo key"))

    try:
        asyncio.run(emulator.serve(meter, args.host, args.port, args.interval, args.count, on_listen=listening))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print("meter: %s" % (e.strerror or e), file=sys.stderr)
        return 1
    return 0


def _now_ms():
    return int(time.monotonic() * 1000)


def build_parser():
    p = argparse.ArgumentParser(
        prog="sim.py",
        description="p1dongle's firmware modules on a PC.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser(
        "decrypt", help="decrypt a raw P1 capture into plain DSMR telegrams",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a raw capture of a meter's P1 output (binary, or hex text with --hex), cut it\n"
                    "into frames, verify and decrypt the DLMS (DB 08 ...) frames with AES-128-GCM, check\n"
                    "each telegram's CRC, and write every verified plain DSMR telegram to stdout,\n"
                    "byte-exact and in order. Plain (unencrypted) telegrams pass through.\n"
                    "Problems go to stderr, one line each: 'offset N: reason'.\n\n"
                    "exit status: 0 at least one telegram came out, 1 none did, 2 bad arguments",
        epilog="The key can also come from $%s (and the authentication key from $%s),\n"
               "which keeps it out of your shell history. Keys are never printed.\n\n"
               "example: sim.py decrypt --key 000102030405060708090A0B0C0D0E0F capture.bin > telegrams.txt"
               % (KEY_ENV, AUTH_KEY_ENV))
    d.add_argument("input", nargs="?", default="-", metavar="INPUT",
                   help="capture file, or - for stdin (default: -)")
    d.add_argument("--key", type=key_type("--key"),
                   help="the meter's 16-byte encryption key (GUEK), 32 hex digits, from your grid operator")
    d.add_argument("--auth-key", type=key_type("--auth-key", True),
                   help="the authentication key (GAK), 32 hex digits; default: Luxembourg's "
                        "00112233445566778899AABBCCDDEEFF; 'none': decrypt WITHOUT checking tags, "
                        "for utilities that hand out the encryption key only (Energie Steiermark)")
    d.add_argument("--meter", default="auto", choices=meters.names(), metavar="PROFILE",
                   help="meter profile: how data-notifications are laid out (default: auto); one of "
                        + ", ".join(meters.names()))
    d.add_argument("--hex", action="store_true", help="the input is hex text, not binary")
    d.add_argument("--max-frame", type=int, default=4096, metavar="BYTES",
                   help="longest frame or telegram accepted (default: 4096)")
    d.add_argument("--timeout-ms", type=int, default=5000, metavar="MS",
                   help="drop a partial frame that has not completed after this long (default: 5000)")
    d.add_argument("--allow-replay", action="store_true",
                   help="accept frame counters that go backwards (e.g. captures joined out of order)")
    d.add_argument("-v", "--verbose", action="store_true",
                   help="end with a status line (telegrams, tag and CRC failures, dropped bytes)")
    d.set_defaults(func=cmd_decrypt, parser=d)   # errors name the subcommand

    r = sub.add_parser(
        "run", help="run the dongle's program on this PC",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the dongle's firmware on this PC: read the meter's bytes from SOURCE, decrypt\n"
                    "and check them, and serve every verified plain telegram on a TCP port, to any\n"
                    "number of clients (telnet, Home Assistant's DSMR integration, dsmr_parser).\n"
                    "Problems and a periodic status line go to the console.\n\n"
                    "sources:\n"
                    "  meter                 an emulated meter: Luxembourg, or the --meter family (demo key)\n"
                    "  file:PATH             a raw capture, replayed at the UART's pace\n"
                    "  tcp:HOST:PORT         an Ethernet P1 reader (serial-to-TCP bridge); reconnects\n"
                    "  serial:DEVICE[@BAUD]  a USB P1 cable (default 115200 8N1)",
        epilog="example: sim.py run --source tcp:192.168.1.15:3000 --key YOUR32HEXDIGITKEY\n"
               "         then: telnet localhost 2323")
    r.add_argument("--source", default="meter", help="where the bytes come from (default: meter)")
    r.add_argument("--key", type=key_type("--key"), help="the meter's encryption key, 32 hex digits "
                   "(also $%s); without one, only plain DSMR meters work" % KEY_ENV)
    r.add_argument("--auth-key", type=key_type("--auth-key", True),
                   help="authentication key (default: Luxembourg's; 'none': tags not checked)")
    r.add_argument("--meter", default="auto", choices=meters.names(), metavar="PROFILE",
                   help="meter profile (default: auto); one of " + ", ".join(meters.names()))
    r.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default: 127.0.0.1; 0.0.0.0 for the whole network)")
    r.add_argument("--tcp-port", type=int, default=2323, metavar="N",
                   help="port for plain telegrams (default: 2323; 0: any free port)")
    r.add_argument("--raw-port", type=int, default=0, metavar="N",
                   help="also serve the raw encrypted frames on this port (default: off)")
    r.add_argument("--max-clients", type=int, default=8, metavar="N", help="clients per port (default: 8)")
    r.add_argument("--status-interval", type=int, default=60, metavar="S",
                   help="seconds between status lines (default: 60; 0: never)")
    r.add_argument("--interval", type=float, default=10.0, metavar="S",
                   help="emulated meter: seconds between frames (default: 10, like a real meter)")
    r.add_argument("--faults", type=int, default=0, metavar="N",
                   help="emulated meter: every Nth frame comes with noise, a bad tag or a cut (default: 0)")
    r.add_argument("--count", type=int, default=0, metavar="N", help="stop after N telegrams (default: run until Ctrl-C)")
    r.add_argument("--allow-replay", action="store_true", help="accept frame counters that go backwards")
    r.add_argument("--mqtt", metavar="HOST[:PORT]",
                   help="also publish to this MQTT broker (telegram, state JSON, status, Home Assistant "
                        "discovery); 'auto': start a local one (mosquitto, else amqtt)")
    r.add_argument("--mqtt-user", metavar="USER", help="MQTT user name")
    r.add_argument("--mqtt-password", metavar="PASSWORD",
                   help="MQTT password (better: $%s, which stays out of your shell history)" % MQTT_PASSWORD_ENV)
    r.add_argument("--device-id", default="p1dongle", metavar="NAME",
                   help="names this dongle in MQTT topics (p1dongle/NAME/...) and Home Assistant (default: p1dongle)")
    r.add_argument("--http-port", type=int, default=8080, metavar="N",
                   help="the web page and the HomeWizard API (default: 8080; 0: any free port; -1: off); "
                        "a password for its settings in $%s" % WEB_PASSWORD_ENV)
    r.add_argument("--mdns", action="store_true",
                   help="announce the dongle by mDNS (HomeWizard's _hwenergy._tcp; with --shelly "
                        "_shelly._tcp) at --host, which must then be this PC's address on the network")
    r.add_argument("--shelly", type=int, nargs="*", metavar="UDP_PORT",
                   help="answer as a Shelly Pro 3EM too: on the web port, and JSON-RPC on these UDP "
                        "ports (a battery polls 1010 and 2220, which want root on a PC)")
    r.add_argument("--history", metavar="DIR",
                   help="where the history is kept (history.hours, .days, .months; default: beside "
                        "--settings, else a folder of this run's, gone when it ends)")
    r.add_argument("--settings", metavar="FILE",
                   help="settings file the web page saves to and the next run starts from (as the "
                        "dongle's /p1dongle.json); default: kept in memory")
    r.add_argument("--setup", action="store_true",
                   help="act as a dongle in its first setup: every request goes to the settings page, "
                        "and a DNS responder (--dns-port) answers every name with 127.0.0.1")
    r.add_argument("--dns-port", type=int, default=0, metavar="N", help="with --setup (default: any free port)")
    r.add_argument("-q", "--quiet", action="store_true", help="no line per telegram")
    r.set_defaults(func=cmd_run, parser=r)

    m = sub.add_parser(
        "meter", help="an emulated meter (Luxembourg or Austrian) behind an Ethernet P1 reader",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make realistic DSMR 5 telegrams (advancing energy, changing power, current time,\n"
                    "correct CRC), encrypt them like a Sagemcom T210-D (AES-128-GCM, incrementing frame\n"
                    "counter) and serve them on a TCP port to every client, like an Ethernet P1 reader,\n"
                    "or write them to stdout.",
        epilog="example: sim.py meter --port 3000 --interval 1 &\n"
               "         sim.py run --source tcp:localhost:3000 --key %s" % DEMO_KEY)
    m.add_argument("--profile", default="lux", choices=sorted(emulator.PROFILES),
                   help="which meter: lux (DSMR in DB frames, default), fluvius (plain, Belgian), steiermark, netznoe (M-Bus, 0x20), "
                        "tinetz (M-Bus, GCM), wienernetze (HDLC, compact), linz (HDLC, block transfer)")
    m.add_argument("--key", type=key_type("--key"), help="encryption key (default: the demo key %s)" % DEMO_KEY)
    m.add_argument("--auth-key", type=key_type("--auth-key"), help="authentication key (default: Luxembourg's)")
    where = m.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, default=3000, metavar="N", help="TCP port to serve on (default: 3000)")
    where.add_argument("--stdout", action="store_true", help="write the raw frames to stdout instead")
    m.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    m.add_argument("--interval", type=float, default=10.0, metavar="S", help="seconds between frames (default: 10)")
    m.add_argument("--faults", type=int, default=0, metavar="N",
                   help="every Nth frame comes with noise, a bad tag or a cut (default: 0, never)")
    m.add_argument("--count", type=int, default=0, metavar="N", help="stop after N frames (default: never)")
    m.add_argument("--seed", type=int, metavar="N", help="the same telegrams every time (the power's wander)")
    m.add_argument("--start", type=iso_seconds, metavar="TIME",
                   help="a fast clock: the meter's clock starts at TIME (ISO 8601 with its offset, e.g. "
                        "2026-10-24T12:00:00+02:00) and moves --step seconds with each frame")
    m.add_argument("--step", type=float, default=60.0, metavar="S",
                   help="with --start: the meter's seconds per frame (default: 60), its energy with them")
    m.set_defaults(func=cmd_meter, parser=m)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    parser = args.parser
    # Keys from the environment are checked the same way, with the same (key-free) messages.
    for name, env in (("key", KEY_ENV), ("auth_key", AUTH_KEY_ENV)):
        if getattr(args, name) is None and os.environ.get(env):
            try:
                setattr(args, name, parse_key(os.environ[env], "$" + env))
            except ConfigError as e:
                parser.error(str(e))
    if args.auth_key is None:
        args.auth_key = LUX_AUTH_KEY
    elif args.auth_key == KEY_ONLY:
        if args.command == "meter":
            parser.error("the emulated meter needs an authentication key to make its tags")
        args.auth_key = None            # key-only mode: the status line says so
    if args.command in ("run", "meter"):
        if args.interval <= 0 or args.count < 0 or args.faults < 0:
            parser.error("--interval must be positive, --count and --faults not negative")
    if args.command == "decrypt":
        if args.key is None:
            parser.error("--key is required (or set $%s)" % KEY_ENV)
        if not 64 <= args.max_frame <= 65535:
            parser.error("--max-frame must be between 64 and 65535")
        if args.timeout_ms <= 0:
            parser.error("--timeout-ms must be positive")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
