"""The fuzz harnesses (tools/fuzz, `make fuzz`): each one run for a few seconds under atheris must
find nothing, and each oracle must be able to fail: fed one input that a deliberately broken
firmware function (monkeypatched here) mishandles, the harness reports it. The per-input budgets
(libFuzzer's -timeout and -rss_limit_mb) are shown to end a run and be reported by run.py."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "tools", "fuzz")
sys.path.insert(0, FUZZ)

import common  # noqa: E402
from p1dongle import captive, config, dlms, dsmr, homewizard, httpd, layouts, link, mqtt, pipeline  # noqa: E402
from p1dongle import axdr, render, state, web  # noqa: E402
from p1dongle.errors import AuthError, ConfigError  # noqa: E402
from p1dongle.mqttout import MqttOutput  # noqa: E402

SHORT_S = 5             # each harness's share of the short run


@pytest.fixture(autouse=True)
def fresh_harnesses():
    """What the harnesses keep between inputs (the captures' telegrams alone, the web page's app)
    is made again for each test: a test breaks the firmware, and what was made then is wrong."""
    def clear():
        for name, module in list(sys.modules.items()):
            if name.startswith("fuzz_"):
                for cache in ("_expected", "_APPS"):
                    if hasattr(module, cache):
                        getattr(module, cache).clear()
    clear()
    yield
    clear()


def atheris_or_fail():
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is not installed: `make test` installs requirements.txt (pip install atheris==3.0.0)")


# -- the short run: every harness under atheris, for a few seconds --------------------------------

@pytest.mark.parametrize("name", common.NAMES)
def test_a_short_fuzz_run_finds_nothing(name, tmp_path):
    atheris_or_fail()
    proc = subprocess.run([sys.executable, os.path.join(FUZZ, "run.py"), "--only", name, "--seconds", str(SHORT_S),
                           "--out", str(tmp_path), "--seed", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    runs = int(proc.stdout.split(" runs,")[0].split()[-1])
    assert runs > 0 and "no findings" in proc.stdout, proc.stdout     # it ran, and said so


# -- each oracle, shown to fail ------------------------------------------------------------------

def finding(name, data):
    """The finding the harness reports for data, as (kind, text): kind is the oracle (or the
    exception's type) and its detail."""
    e = common.run_one(common.harness(name), data)
    assert e is not None, "the harness found nothing wrong"
    return common.signature(e), common.describe(e)


def capture(name):
    import seeds
    return [c for c in seeds.captures() if c.name == name][0]


def pipeline_input(name, stream=b"", profile=0, options=0):
    import fuzz_pipeline
    c = capture(name)
    return bytes([fuzz_pipeline._METERS.index(c), profile, options]) + stream


def test_the_harnesses_find_nothing_in_their_seeds_when_nothing_is_broken(monkeypatch):
    """The demonstrations below break the firmware on purpose; unbroken, the same inputs pass
    (the seeds of these harnesses are what the demonstrations feed)."""
    for name in ("dsmr", "axdr", "dns"):
        h = common.harness(name)
        for data in h.seeds()[:12]:
            assert common.run_one(h, data) is None, (name, data[:40])


def test_pipeline_an_exception_the_data_path_does_not_declare(monkeypatch):
    def broken(t, n=-1):
        raise IndexError("broken on purpose")
    monkeypatch.setattr(pipeline, "check", broken)
    kind, text = finding("pipeline", pipeline_input("lux-telegram"))
    assert kind.startswith("IndexError@") and "broken on purpose" in text


def test_pipeline_a_rendered_telegram_with_a_wrong_crc(monkeypatch):
    monkeypatch.setattr(render, "crc16", lambda data: 0x1234)
    assert finding("pipeline", pipeline_input("netznoe-evn-doc"))[0] == "crc"


def test_pipeline_a_decrypted_telegram_without_its_crc(monkeypatch):
    real = pipeline.Pipeline._telegram

    def without_crc(self, pos, telegram, has_crc, authenticated=True):
        if has_crc:                             # the CRC cut off: "...!" and no CRC
            telegram = bytes(telegram)
            telegram, has_crc = telegram[:telegram.rfind(b"!") + 1] + b"\r\n", False
        return real(self, pos, telegram, has_crc, authenticated)
    monkeypatch.setattr(pipeline.Pipeline, "_telegram", without_crc)
    assert finding("pipeline", pipeline_input("lux-smarty-t210d"))[0] == "crc-less"
    # a plain DSMR 2/3 telegram, passed through as it came, is no finding
    assert common.run_one(common.harness("pipeline"), pipeline_input("dsmr22-no-crc")) is None


def test_pipeline_state_json_that_is_no_json(monkeypatch):
    real = state.Writer.end

    def broken(self, view=False):
        doc = real(self, view)
        return None if doc is None else bytes(doc)[:-1]
    monkeypatch.setattr(state.Writer, "end", broken)
    assert finding("pipeline", pipeline_input("lux-telegram"))[0] == "json/state"


def test_pipeline_a_key_in_a_problem_line(monkeypatch):
    real = dlms.DlmsCipher.__init__

    def keep(self, key, *args, **kw):
        real(self, key, *args, **kw)
        self.leak = key

    def decrypt(self, frame, n=-1):
        raise AuthError("authentication failed with key %s" % self.leak.hex().upper())
    monkeypatch.setattr(dlms.DlmsCipher, "__init__", keep)
    monkeypatch.setattr(dlms.DlmsCipher, "decrypt", decrypt)
    kind, text = finding("pipeline", pipeline_input("lux-smarty-t210d"))
    assert kind == "secret/line" and "d491..." in text and "d491470f" not in text.lower()   # said, not shown


def test_pipeline_a_good_capture_lost_behind_the_stream(monkeypatch):
    real = pipeline.Pipeline._telegram

    def first_only(self, pos, telegram, has_crc, authenticated=True):
        if not self.telegrams:                  # every telegram after the first is swallowed
            real(self, pos, telegram, has_crc, authenticated)
    monkeypatch.setattr(pipeline.Pipeline, "_telegram", first_only)
    c = capture("lux-smarty-t210d")
    assert finding("pipeline", pipeline_input(c.name, c.stream))[0] == "lost/db-key"


def test_pipeline_a_problem_of_two_lines(monkeypatch):
    monkeypatch.setattr(pipeline, "_WHY", tuple(w + "\nsecond line" for w in pipeline._WHY))
    assert finding("pipeline", pipeline_input("lux-telegram", b"noise"))[0] == "problem"


def test_pipeline_a_raw_frame_that_did_not_come(monkeypatch):
    monkeypatch.setattr(pipeline.Pipeline, "_raw", lambda self, fa, raw=None: self.emit(pipeline.FRAME, 0, b"\xdb\x08made up", None))
    assert finding("pipeline", pipeline_input("lux-smarty-t210d", options=8))[0] == "frame"


def test_pipeline_mqtt_output_that_keeps_every_name(monkeypatch):
    real = MqttOutput.telegram

    def hoard(self, t):
        real(self, t)
        for k in range(200):
            self._announced["made%d" % k] = 0
    monkeypatch.setattr(MqttOutput, "telegram", hoard)
    assert finding("pipeline", pipeline_input("netznoe-evn-doc"))[0] == "memory"


def lux_telegram():
    import meter
    return meter.LUX_TELEGRAM


def test_dsmr_check_against_the_crc_computed_by_the_harness(monkeypatch):
    monkeypatch.setattr(dsmr.loops, "crc16", lambda t, i, n, crc: 0)
    assert finding("dsmr", lux_telegram())[0] == "check/crc"


def test_dsmr_parse_that_raises_on_a_telegram(monkeypatch):
    def broken(line, i, out):
        raise dsmr.TelegramError("broken on purpose")
    monkeypatch.setattr(dsmr, "_groups", broken)
    assert finding("dsmr", lux_telegram())[0] == "parse"


def test_dsmr_readings_that_are_no_readings(monkeypatch):
    monkeypatch.setattr(dsmr, "_number", lambda group: 1.5)
    assert finding("dsmr", lux_telegram())[0] == "readings"


def test_dsmr_state_json_from_the_text_and_from_the_readings_differ(monkeypatch):
    def skip_a_line(self, t, i, n, o):
        return t.find(b"\n", i) + 1 or n         # the first number line left out, nothing written
    monkeypatch.setattr(state.Writer, "lines", skip_a_line)
    assert finding("dsmr", lux_telegram())[0] == "same"


def test_dsmr_a_number_that_is_not_the_readings_digits(monkeypatch):
    real = state.loops.put_decimal
    monkeypatch.setattr(state.loops, "put_decimal", lambda buf, pos, m, e: real(buf, pos, m + 1, e))
    assert finding("dsmr", lux_telegram())[0] == "number"


def test_dsmr_a_discovery_config_that_is_no_json(monkeypatch):
    monkeypatch.setattr(MqttOutput, "configs", lambda self, readings, rendered=None: iter([("t/config", "{")]))
    assert finding("dsmr", lux_telegram())[0] == "json/discovery"


def axdr_input():
    import austria
    return bytes([layouts.LAYOUTS.index("obis")]) + austria.notification(austria.NETZNOE_LIKE)


def test_axdr_an_exception_the_decoder_does_not_declare(monkeypatch):
    def broken(self, i):
        raise IndexError("broken on purpose")
    monkeypatch.setattr(axdr._Reader, "length", broken)
    assert finding("axdr", axdr_input())[0].startswith("IndexError@")


def test_axdr_a_rendered_telegram_with_a_wrong_crc(monkeypatch):
    monkeypatch.setattr(render, "crc16", lambda data: 0)
    assert finding("axdr", axdr_input())[0] == "crc"


def test_axdr_homewizard_data_that_is_no_json(monkeypatch):
    monkeypatch.setattr(homewizard, "exact", lambda m, e: "0x%x" % m)
    assert finding("axdr", axdr_input())[0] == "json/homewizard"


def test_axdr_a_scaled_reading_as_a_float(monkeypatch):
    monkeypatch.setattr(layouts, "scaled", lambda m, scaler, unit: (m * 10.0 ** scaler, 0, "kWh"))
    assert finding("axdr", axdr_input())[0] == "readings"


def link_input():
    import fuzz_link
    return bytes([0]) + fuzz_link._records(capture("netznoe-evn-doc").stream)


def test_link_an_apdu_that_is_not_its_frames_joined(monkeypatch):
    real = link.Reassembler._add

    def one_more(self, frame, start, end):
        real(self, frame, start, end)
        self.n += 1                             # a stale byte of the buffer comes along
    monkeypatch.setattr(link.Reassembler, "_add", one_more)
    assert finding("link", link_input())[0] == "joined"


def test_link_a_push_lost_behind_the_frames(monkeypatch):
    real = link.Reassembler.mbus

    def lose_the_second_push(self, frame, n):
        got = real(self, frame, n)
        if got >= 0:
            self.pushes = getattr(self, "pushes", 0) + 1
            return -1 if self.pushes == 2 else got
        return got
    monkeypatch.setattr(link.Reassembler, "mbus", lose_the_second_push)
    assert finding("link", link_input())[0] == "lost/mbus-2"


def settings_input(body, base=0, what=0):
    return bytes([base | what << 2]) + json.dumps(body).encode()


def test_config_an_exception_out_of_the_settings_page(monkeypatch):
    def broken(raw, changes):
        raise TypeError("broken on purpose")
    monkeypatch.setattr(config, "edit", broken)
    assert finding("config", settings_input({"tcp_port": 2323}))[0].startswith("TypeError@")


def test_config_a_key_in_the_refusal(monkeypatch):
    def telling(text, what="key"):
        raise ConfigError("%s %s is not right" % (what, text))
    monkeypatch.setattr(config, "parse_key", telling)
    assert finding("config", settings_input({"tcp_port": 2323}))[0] == "secret/answer"


def test_config_a_refused_change_that_changed_the_settings(monkeypatch):
    def half(raw, changes):
        raw["tcp_port"] = 1                     # changed in place, then refused
        raise ConfigError("refused")
    monkeypatch.setattr(config, "edit", half)
    assert finding("config", settings_input({"tcp_port": 2323}))[0] == "unchanged"


def test_config_saved_settings_the_dongle_cannot_start_with(monkeypatch):
    monkeypatch.setattr(config, "edit", lambda raw, changes: dict(raw, **changes))   # no check
    assert finding("config", settings_input({"tcp_port": 99999}))[0].startswith("start/")


def test_config_public_settings_with_a_secret(monkeypatch):
    monkeypatch.setattr(config, "public", lambda raw: (json.loads(json.dumps(raw)), {}))
    assert finding("config", settings_input({"tcp_port": 2323}))[0] == "public"


def test_config_an_empty_secret_that_replaced_the_old_one(monkeypatch):
    real = config._set
    monkeypatch.setattr(config, "_set", lambda d, name, value, secret: real(d, name, value, False))
    assert finding("config", settings_input({"wifi": {"password": ""}}))[0] == "secret/kept"


def http_input(request, mode=0):
    return bytes([mode]) + request


def test_http_a_page_that_fails(monkeypatch):
    def broken(self, req):
        raise KeyError("broken on purpose")
    monkeypatch.setattr(web.Web, "_status", broken)
    kind, text = finding("http", http_input(b"GET /api/status HTTP/1.0\r\n\r\n"))
    assert kind == "500" and "KeyError" in text


def test_http_a_request_that_is_no_http_held(monkeypatch):
    async def whole_head(reader, streams=()):           # waits for the end of a head, whatever came
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await reader.read(512)
            if not chunk:
                return httpd.Response("incomplete request\n", 400)
            head += chunk
        return httpd.Response("not an HTTP request\n", 400)
    monkeypatch.setattr(httpd, "read_request", whole_head)
    assert finding("http", http_input(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"))[0] == "held"


def test_http_an_answer_that_is_no_http(monkeypatch):
    def sloppy(writer, res, head_only=False):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}")
    monkeypatch.setattr(httpd, "start_response", sloppy)
    assert finding("http", http_input(b"GET / HTTP/1.0\r\n\r\n"))[0] == "answer"


def test_http_a_secret_in_an_answer(monkeypatch):
    monkeypatch.setattr(config, "public", lambda raw: (json.loads(json.dumps(raw)), {}))
    assert finding("http", http_input(b"GET /api/settings HTTP/1.0\r\n\r\n"))[0] == "secret/answer"


def test_http_no_answer(monkeypatch):
    async def mute(self, reader, writer, task):
        await httpd.read_request(reader)
    monkeypatch.setattr(httpd.HttpServer, "_exchange", mute)
    assert finding("http", http_input(b"GET / HTTP/1.0\r\n\r\n"))[0] == "silent"


def test_http_an_error_of_the_server_itself(monkeypatch):
    async def broken(writer, body, head_only=False):
        raise RuntimeError("broken on purpose")
    monkeypatch.setattr(httpd, "finish_response", broken)
    assert finding("http", http_input(b"GET / HTTP/1.0\r\n\r\n"))[0] == "server"


def publish(topic, payload):
    body = bytes([0, len(topic)]) + topic.encode() + payload
    return b"\x30" + bytes([len(body)]) + body


async def lenient_listen(self, reader):
    # the packet reader as it was before issue 22: any number of remaining-length bytes
    try:
        while True:
            kind = (await reader.readexactly(1))[0] >> 4
            n = shift = 0
            while True:
                b = (await reader.readexactly(1))[0]
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            body = await reader.readexactly(n) if n else b""
            if kind == 13:
                self._pong = True
            elif kind == 3 and len(body) >= 2:
                size = (body[0] << 8) | body[1]
                self._received(bytes(body[2:2 + size]), body[2 + size:])
    except Exception:   # noqa: BLE001
        return


def test_mqtt_a_reader_that_goes_on_after_a_malformed_packet(monkeypatch):
    monkeypatch.setattr(mqtt.MqttClient, "_listen", lenient_listen)
    # PINGRESP whose remaining length takes 5 bytes, then a PINGRESP
    assert finding("mqtt", b"\xd0\x80\x80\x80\x80\x00\xd0\x00")[0] == "acted/malformed"


def test_mqtt_a_message_handed_on_for_a_topic_not_subscribed(monkeypatch):
    def everyone(self, topic, payload):
        for t, on_message in self._subscriptions:
            on_message(t, payload)
    monkeypatch.setattr(mqtt.MqttClient, "_received", everyone)
    assert finding("mqtt", publish("other/topic", b"1"))[0] == "acted/eof"


def test_mqtt_a_reader_that_stops_on_a_well_formed_stream(monkeypatch):
    def broken(self, topic, payload):
        raise IndexError("broken on purpose")
    monkeypatch.setattr(mqtt.MqttClient, "_received", broken)
    # a PUBLISH on another topic (nothing to hand on), then a SUBACK left unread
    assert finding("mqtt", publish("other/topic", b"1") + b"\x90\x03\x00\x01\x00")[0] == "stopped"


def dns_query():
    import dns.message
    return dns.message.make_query("connectivitycheck.gstatic.com", "A").to_wire()


def test_dns_an_exception_out_of_the_responder(monkeypatch):
    def broken(query, ip, out=None):
        raise IndexError("broken on purpose")
    monkeypatch.setattr(captive, "answer", broken)
    assert finding("dns", dns_query())[0].startswith("IndexError@")


def test_dns_a_reply_with_another_id(monkeypatch):
    real = captive.answer

    def other_id(query, ip, out=None):
        reply = real(query, ip, out)
        return bytes([reply[0] ^ 1]) + reply[1:]
    monkeypatch.setattr(captive, "answer", other_id)
    assert finding("dns", dns_query())[0] == "reply/id"


def test_dns_a_query_left_unanswered(monkeypatch):
    monkeypatch.setattr(captive, "answer", lambda query, ip, out=None: None)
    assert finding("dns", dns_query())[0] == "unanswered/query"


def test_dns_a_reply_to_a_reply(monkeypatch):
    import dns.message
    query = dns_query()
    real = captive.answer
    monkeypatch.setattr(captive, "answer", lambda q, ip, out=None: real(query, ip, out))
    response = dns.message.make_response(dns.message.from_wire(query)).to_wire()
    assert finding("dns", response)[0] == "reply/not-a-query"


# -- the per-input budgets and run.py's report ------------------------------------------------------

BROKEN = '''
import sys
sys.path.insert(0, %(fuzz)r)
import common                       # the firmware's path first
from p1dongle import captive
import time


def slow(query, ip, out=None):
    while True:
        pass


def greedy(query, ip, out=None):
    hoard = []
    while True:                     # slowly enough for libFuzzer's once-a-second look at the RSS
        hoard.append(bytearray(8 << 20))
        time.sleep(0.05)


captive.answer = %(how)s
import fuzz
sys.exit(fuzz.main(sys.argv))
'''


# (the memory case gets time enough that only its memory can end it)
@pytest.mark.parametrize("how, timeout, said", [("slow", 1, "timeout"), ("greedy", 60, "out of memory")])
def test_an_input_over_its_budget_is_a_finding_run_py_reports(how, timeout, said, tmp_path, monkeypatch, capsys):
    atheris_or_fail()
    import run
    script = tmp_path / "broken.py"
    script.write_text(BROKEN % {"fuzz": FUZZ, "how": how})
    monkeypatch.setattr(run, "RESTARTS", 0)
    monkeypatch.setattr(run, "fuzz_command", lambda name, args: [sys.executable, str(script), name] + args)
    rc = run.main(["--only", "dns", "--seconds", "8", "--timeout", str(timeout), "--rss-mb", "200",
                   "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "FINDING in dns: " + said in out and "hex:" in out, out
    kind = "timeout-" if how == "slow" else "oom-"
    assert any(f.startswith(kind) for f in os.listdir(tmp_path / "out" / "dns" / "crashes")), out
