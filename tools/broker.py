"""A local MQTT broker for the demo and the tests: mosquitto (Debian's package) when installed,
else amqtt (from PyPI, in requirements.txt). It listens on 127.0.0.1 only, on the port given or a
free one, optionally with user names and passwords, and keeps nothing on disk.

    b = LocalBroker(users={"meter": "secret"}).start()     # b.port, b.kind
    b.kill(); b.start()                                    # a broker crash and restart, same port
    b.stop()
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _amqtt_command():
    here = os.path.join(os.path.dirname(sys.executable), "amqtt")
    return here if os.path.exists(here) else shutil.which("amqtt")


class LocalBroker:
    def __init__(self, port=0, users=None, kind=None):
        self.port = port or free_port()
        self.users = users or {}
        self.kind = kind or ("mosquitto" if shutil.which("mosquitto") else "amqtt")
        self.dir = tempfile.mkdtemp(prefix="p1dongle-broker-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.log = os.path.join(self.dir, "broker.log")
        self._configure()

    def _configure(self):
        if self.kind == "mosquitto":
            lines = ["listener %d 127.0.0.1" % self.port, "persistence false",
                     "allow_anonymous %s" % ("false" if self.users else "true")]
            if self.users:
                pw = os.path.join(self.dir, "passwords")
                for i, (user, password) in enumerate(sorted(self.users.items())):
                    subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [pw, user, password],
                                   check=True, capture_output=True)
                os.chmod(pw, 0o644)         # mosquitto started as root reads it as user mosquitto
                lines.append("password_file " + pw)
            self.conf = os.path.join(self.dir, "mosquitto.conf")
            with open(self.conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            self.cmd = ["mosquitto", "-c", self.conf]
        else:
            cmd = _amqtt_command()
            if cmd is None:
                raise RuntimeError("no MQTT broker: install mosquitto (apt-get install mosquitto) or amqtt (pip)")
            conf = ["listeners:", "  default:", "    type: tcp", "    bind: 127.0.0.1:%d" % self.port,
                    "plugins:", "  amqtt.plugins.authentication.AnonymousAuthPlugin:",
                    "    allow_anonymous: %s" % ("false" if self.users else "true")]
            if self.users:
                import crypt     # Python 3.11, as amqtt's password files want (sha512-crypt)
                pw = os.path.join(self.dir, "passwords")
                with open(pw, "w") as f:
                    for user, password in sorted(self.users.items()):
                        f.write("%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))))
                conf += ["  amqtt.plugins.authentication.FileAuthPlugin:", "    password_file: " + pw]
            self.conf = os.path.join(self.dir, "amqtt.yaml")
            with open(self.conf, "w") as f:
                f.write("\n".join(conf) + "\n")
            self.cmd = [cmd, "-c", self.conf]

    def start(self, timeout=20):
        """Start it and return once it accepts connections."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("%s did not start on port %d:\n%s" % (self.kind, self.port, self.output()))
                time.sleep(0.05)     # polling for the port to open, not waiting for an event

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """The broker dies (SIGKILL): no goodbye to anyone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
