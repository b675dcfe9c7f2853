#!/usr/bin/env python3
"""p1dongle on a PC: the dongle's own firmware modules, fed from files and streams.

  decrypt   turn a raw capture of a meter's P1 output into the plain DSMR telegrams in it
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))

from p1dongle.dlms import LUX_AUTH_KEY, parse_key  # noqa: E402
from p1dongle.errors import ConfigError  # noqa: E402
from p1dongle.pipeline import TELEGRAM, Pipeline  # noqa: E402

KEY_ENV = "P1DONGLE_KEY"
AUTH_KEY_ENV = "P1DONGLE_AUTH_KEY"
CHUNK = 4096
_SEPARATORS = " \t\r\n:,-"
_HEXDIGITS = "0123456789abcdefABCDEF"


def key_type(what):
    def parse(text):
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
    pipe = Pipeline(args.key, args.auth_key, max_frame=args.max_frame, timeout_ms=args.timeout_ms,
                    replay_check=not args.allow_replay)
    out = sys.stdout.buffer

    def emit(events):
        for kind, pos, what, _ in events:
            if kind == TELEGRAM:
                out.write(what)
                out.flush()
            else:
                print("offset %d: %s" % (pos, what), file=sys.stderr, flush=True)

    try:
        for chunk in _chunks(args.input, args.hex):
            emit(pipe.push(chunk, _now_ms()))
        emit(pipe.flush(_now_ms()))
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            return 0 if pipe.telegrams else 1
        print("decrypt: cannot read %s: %s" % (args.input, e.strerror or e), file=sys.stderr)
        return 1
    except ValueError as e:
        emit(pipe.flush(_now_ms()))
        print("decrypt: %s" % e, file=sys.stderr)
        return 0 if pipe.telegrams else 1
    if args.verbose:
        print("decrypt: " + pipe.status(), file=sys.stderr)
    if pipe.telegrams:
        return 0
    if pipe.auth_failures:
        hint = "every encrypted frame failed authentication: check --key and --auth-key"
    elif pipe.frames.pos == 0:
        hint = "the input is empty"
    else:
        hint = "no frame found in %d bytes (is it a capture of the meter's P1 output?%s)" % (
            pipe.frames.pos, "" if args.hex else " if it is hex text, add --hex")
    print("decrypt: no telegram recovered: " + hint, file=sys.stderr)
    return 1


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
    d.add_argument("--auth-key", type=key_type("--auth-key"),
                   help="the authentication key (GAK), 32 hex digits; default: Luxembourg's "
                        "00112233445566778899AABBCCDDEEFF")
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
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "decrypt":
        parser = args.parser
        # Keys from the environment are checked the same way, with the same (key-free) messages.
        for name, env in (("key", KEY_ENV), ("auth_key", AUTH_KEY_ENV)):
            if getattr(args, name) is None and os.environ.get(env):
                try:
                    setattr(args, name, parse_key(os.environ[env], "$" + env))
                except ConfigError as e:
                    parser.error(str(e))
        if args.key is None:
            parser.error("--key is required (or set $%s)" % KEY_ENV)
        if args.auth_key is None:
            args.auth_key = LUX_AUTH_KEY
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
