# The dongle's web page and local API (on httpd.py, the app's event loop, beside the TCP ports
# and MQTT):
#
#   GET  /                  the status page: the meter's latest values, the dongle's counters, the
#                           latest telegram, refreshed every 3 s          (pages.py)
#   GET  /settings          the settings page
#   GET  /api/status        what the status page shows, as JSON
#   GET  /api/settings      the settings without their secrets, and which secrets are set
#   POST /api/settings      changes (JSON, as in the settings file): checked, saved, then the app
#                           restarts with them; a bad value: 400 and its one line, nothing changed
#   GET  /api/backup        the settings file without its secrets (a download)
#   POST /api/restore       a backup: its settings, the secrets kept; saved, restart
#   GET  /api/update        the firmware: version, how it updates, an update's progress, the last
#                           update's outcome (update.py)
#   POST /api/update        a new firmware (application/octet-stream, its SHA-256 in X-SHA256):
#                           written as it comes, checked, then the dongle restarts into it on
#                           probation; a bad one: 400 and its one line, nothing changed
#   GET  /api, /api/v1/data, /api/v1/telegram   the HomeWizard v1 local API (homewizard.py)
#   GET  /api/p1dongle/history  hours, days, months and the peaks (history.py), the status page's plots
#   GET  /shelly, /rpc/<Method>, POST /rpc, a WebSocket on /rpc   the Shelly face, when it is on
#                           (shelly.py)
#
# With a web_password the settings want it (HTTP Basic, any user name); with web_private every
# page does. While the dongle is its own access point (first setup), the phones' connectivity
# checks and any request for another host are sent to the settings page (captive.py answers
# their DNS). No key or password is ever in an answer.
#
# An output of the app (output.py), when it has settings to edit and an http_port: it reads the
# app's View (the latest telegram, counters, settings), never the app itself.
import asyncio
import hashlib
import json
from binascii import a2b_base64

from . import VERSION, config, homewizard, memory, meters, pages
from .compat import close_stream, loops, sleep_ms, stream_readinto, wait_for
from .errors import ConfigError, UpdateError
from .httpd import HttpServer, Response, redirect
from .output import Output
from .reading import exact, identifier
from .update import READ_TIMEOUT_S

NO_METER_S = 60         # nothing from the meter this long after the start: no meter is connected
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_PRIVATE = ("/settings", "/api/settings", "/api/backup", "/api/restore", "/api/update")
# The paths the phones' and browsers' connectivity checks fetch (Android, Apple, Windows, Firefox,
# GNOME, KDE): answered with a redirect to the settings page while the access point is up.
PROBES = ("/generate_204", "/gen_204", "/hotspot-detect.html", "/library/test/success.html",
          "/connecttest.txt", "/ncsi.txt", "/redirect", "/success.txt", "/canonical.html",
          "/check_network_status.txt", "/nm", "/kdeconnectivitycheck")


def make(view):
    if view.settings is None or view.cfg.get("http_port") is None:
        return ()
    return (Web(view, view.settings, view.serial, view.log),)


class Web(Output):
    """The web server of an app (its View: readings, counters, restart) and its Settings."""
    name = "web"

    def __init__(self, app, settings, serial="000000000000", log=print):
        self.app = app                  # the app's View
        self.settings = settings
        self.serial = serial
        self.log = log
        self.setup = None               # while the access point is up: its address ("ip" or
                                        # "ip:port"), where every request is sent
        self.http = HttpServer(self.handle, log=log, streams=(("POST", "/api/update"),))
        self.routes = {
            ("GET", "/"): self._status_page, ("GET", "/settings"): self._settings_page,
            ("GET", "/style.css"): self._style, ("GET", "/api/status"): self._status,
            ("GET", "/api/settings"): self._get_settings, ("POST", "/api/settings"): self._post_settings,
            ("GET", "/api/backup"): self._backup, ("POST", "/api/restore"): self._restore,
            ("GET", "/api"): self._hw_device, ("GET", "/api/v1/data"): self._hw_data,
            ("GET", "/api/v1/telegram"): self._hw_telegram,
            ("GET", "/api/v1/system"): self._hw_system, ("PUT", "/api/v1/system"): self._hw_system_put,
            ("PUT", "/api/v1/identify"): self._hw_identify,
            ("GET", "/api/p1dongle/history"): self._history,
            ("GET", "/api/update"): self._get_update, ("POST", "/api/update"): self._post_update,
        }
        self.shelly = None
        if app.cfg.get("shelly"):
            from .shelly import Face
            self.shelly = Face(app)
            self.routes[("GET", "/shelly")] = self._shelly_info
            self.routes[("GET", "/rpc")] = self._shelly_socket
            self.routes[("POST", "/rpc")] = self._shelly_post

    @property
    def port(self):
        return self.http.port

    async def start(self, host, port=None):
        await self.http.start(host, self.app.cfg["http_port"] if port is None else port)

    async def stop(self):
        await self.http.stop()

    def start_part(self):
        return "web page on port %d" % self.port

    def handle(self, req):
        if self.setup is not None and _redirected(req, self.setup):
            return redirect("http://%s/settings" % self.setup)
        if not self._allowed(req):
            return Response("the password for the dongle's settings, please\n", 401,
                            headers={"WWW-Authenticate": 'Basic realm="p1dongle"'})
        method = "GET" if req.method == "HEAD" else req.method
        page = self.routes.get((method, req.path))
        if page is None and method == "GET" and self.shelly and req.path.startswith("/rpc/"):
            page = self._shelly_get
        if page is not None:
            if method == "GET" and req.path != "/api/update":
                self._proves(self.app.updates)
            return page(req)
        for _, path in self.routes:
            if path == req.path:
                return Response("method not allowed\n", 405)
        return Response("not found\n", 404)

    def _proves(self, updates):
        # A new firmware on probation with no meter connected (nothing heard from it for a while
        # since the start: a meter sends every 1-10 s) proves itself by serving the web page; with
        # a meter it must pass a telegram on. Not by /api/update: that is what flash.py update and
        # the page's own polling ask while they wait for it.
        if updates is not None and updates.trial and not self.app.heard and \
                self.app.uptime() >= min(NO_METER_S, updates.probation_s // 2):
            updates.proven("the web page served, no meter connected")

    def _allowed(self, req):
        password = self.settings.raw.get("web_password")
        if not password or not (self.settings.raw.get("web_private") or req.path in _PRIVATE):
            return True
        return _authorized(req.headers.get("authorization"), password)

    # -- the pages -------------------------------------------------------------------------------

    def _status_page(self, req):
        return Response(pages.STATUS, content_type=_HTML)

    def _settings_page(self, req):
        return Response(pages.SETTINGS, content_type=_HTML)

    def _style(self, req):
        return Response(pages.STYLE, content_type="text/css", headers={"Cache-Control": "max-age=3600"})

    def _status(self, req):
        return Response(self._status_pieces(), content_type=_JSON)

    def _status_pieces(self):
        # the answer a piece at a time (each is sent as it comes): no block of the heap need hold
        # all of it
        app = self.app
        readings = app.latest.readings()
        yield '{"device_id":%s,"version":"%s","values":[' % (json.dumps(app.cfg["device_id"]), VERSION)
        meter = ""
        when = ""
        if readings:
            meter = identifier(readings) or ""
            first = True
            for row, value in readings:
                if isinstance(value, tuple):
                    yield '%s[%s,%s,"%s",%s]' % ("" if first else ",", json.dumps(row[1]), json.dumps(row[2]),
                                                 exact(value[0], value[1]), json.dumps(value[2]))
                    first = False
                elif row[1] == "powerTs":
                    when = value
        d = app.diagnostics()
        d.setdefault("mqtt", "off")     # (the MQTT output says connected or down)
        yield '],"meter":%s,"time":%s,"status":%s' % (json.dumps(meter), json.dumps(when), json.dumps(d))
        yield ',"line":%s}' % json.dumps(app.status())

    # -- the settings ----------------------------------------------------------------------------

    def _get_settings(self, req):
        settings, secrets = config.public(self.settings.raw)
        return Response(json.dumps({"settings": settings, "secrets": secrets, "meters": meters.names(),
                                    # (mdns's: what this dongle runs with, its platform's unless set)
                                    "defaults": {"tcp_port": config.DEFAULTS["tcp_port"], "mdns": self.app.cfg["mdns"],
                                                 "shelly": False},
                                    "setup": self.setup is not None}), content_type=_JSON)

    def _post_settings(self, req):
        return self._change(req, config.edit)

    def _restore(self, req):
        return self._change(req, config.restore)

    def _change(self, req, how):
        # JSON only: a form or a text/plain POST from another web site (which a browser sends
        # without asking) must not change the dongle; application/json from elsewhere needs the
        # browser's CORS preflight, which this server never grants.
        if not req.headers.get("content-type", "").lower().startswith("application/json"):
            return _error("the settings must be sent as application/json", 415)
        try:
            changes = config.loads(req.body.decode()) if req.body else None
            raw = how(self.settings.raw, changes)
            self.settings.save(raw)
        except ConfigError as e:
            return _error(str(e))            # config's messages never hold a key or a password
        except (ValueError, UnicodeError):
            return _error("the settings must be JSON")
        except OSError as e:
            return _error("the settings could not be saved: %s" % e, 500)
        self.log("p1dongle: settings changed on the web page; restarting")
        self.app.restart_soon()
        return Response('{"message":"Saved. The dongle restarts with the new settings."}', content_type=_JSON)

    def _backup(self, req):
        settings, _ = config.public(self.settings.raw)
        return Response(json.dumps(settings), content_type=_JSON,
                        headers={"Content-Disposition": 'attachment; filename="p1dongle-settings.json"'})

    # -- updates ---------------------------------------------------------------------------------

    def _get_update(self, req):
        updates = self.app.updates
        if updates is None:
            return _error("updates: not on this platform", 404)
        return Response(json.dumps(updates.state()), content_type=_JSON)

    async def _post_update(self, req):
        # application/octet-stream and X-SHA256: a browser sends neither to another site without
        # a CORS preflight, which this server never grants (as for the settings)
        updates = self.app.updates
        try:
            size = int(req.headers.get("content-length") or "0")
        except ValueError:
            size = 0
        why = None
        if not req.headers.get("content-type", "").lower().startswith("application/octet-stream"):
            why = _error("an update is sent as application/octet-stream", 415)
        elif updates is None:
            why = _error("updates: not on this platform", 404)
        elif updates.busy:
            why = _error("an update is already being received", 409)
        elif size <= 0:
            why = _error("an update needs its Content-Length", 411)
        if why is not None:
            await _drain(req.body, size)
            return why
        self.log("p1dongle: an update is coming in (%d KB)" % (size // 1024))
        try:
            version = await updates.receive(req.body, size, req.headers.get("x-sha256"), self.app.update_progress)
        except UpdateError as e:
            self.log("p1dongle: update refused: %s" % e)
            self.app.update_progress(updates)
            await _drain(req.body, size - updates.received)
            return _error(str(e))
        self.app.reboot_soon()
        return Response(json.dumps({"message": "%s written and checked. The dongle restarts into it; it is kept once "
                                               "it proves itself." % version, "version": version}), content_type=_JSON)

    # -- the HomeWizard API ----------------------------------------------------------------------

    def _hw_device(self, req):
        return Response(homewizard.device(self.serial), content_type=_JSON)

    def _hw_data(self, req):
        wifi = self.settings.raw.get("wifi")
        ssid = wifi.get("ssid", "") if isinstance(wifi, dict) else ""
        rssi = self.app.info().get("wifi_rssi") if self.app.info else None
        return Response(homewizard.pieces(self.app.latest.readings(), ssid, rssi, self.app.history),
                        content_type=_JSON)

    def _history(self, req):
        history = self.app.history
        if history is None:
            return Response('{"error":"the history is off (setting history)"}', 404, content_type=_JSON)
        # ?peaks: the peaks only (the status page asks for them every 10 s)
        return Response(history.pieces(() if req.query == "peaks" else ("hours", "days", "months")),
                        content_type=_JSON)

    def _hw_system(self, req):
        return Response(homewizard.SYSTEM, content_type=_JSON)

    def _hw_system_put(self, req):
        wrong = homewizard.system_update(req.body)
        if wrong:
            return Response(homewizard.error(wrong), 400, content_type=_JSON)
        return Response(homewizard.SYSTEM, content_type=_JSON)     # no cloud to switch on

    def _hw_identify(self, req):
        shown = self.app.identify(self.app.cfg) if self.app.identify else False
        self.log("web: identify: %s" % ("the LED blinks" if shown else "no LED set (led_pin)"))
        return Response(homewizard.IDENTIFIED, content_type=_JSON)

    def _hw_telegram(self, req):
        telegram = self.app.latest.data
        if telegram is None:
            return Response("no telegram yet\n", 503)
        # the telegram itself, a view of the outputs' backlog: the server hands it to the stream
        # before anything waits (httpd.start_response), so a newer telegram cannot overwrite it
        # first; what the socket does not take at once the stream copies
        return Response(telegram, content_type="text/plain; charset=ascii")


    # -- the Shelly face -------------------------------------------------------------------------

    def _shelly_info(self, req):
        return Response(self.shelly.call("Shelly.GetDeviceInfo"), content_type=_JSON)

    def _shelly_get(self, req):
        # GET /rpc/EM.GetStatus?id=0: the bare result, as a Shelly answers it
        params = {}
        for pair in req.query.split("&"):
            name, _, value = pair.partition("=")
            if name == "id":
                params["id"] = int(value) if value.isdigit() else value
        result = self.shelly.call(req.path[5:], params)
        if isinstance(result, tuple):
            return Response(json.dumps({"code": result[0], "message": result[1]}),
                            404 if result[0] == 404 else 400, content_type=_JSON)
        return Response(result, content_type=_JSON)     # (pieces, sent one by one)

    def _shelly_post(self, req):
        try:
            request = json.loads(req.body)
        except ValueError:
            request = None
        answer = self.shelly.frame(request) if isinstance(request, dict) else None
        if answer is None:
            return Response(json.dumps({"code": -32600, "message": "not a JSON-RPC request"}), 400, content_type=_JSON)
        return Response(answer, content_type=_JSON)

    def _shelly_socket(self, req):
        key = req.headers.get("sec-websocket-key")
        if req.headers.get("upgrade", "").lower() != "websocket" or not key:
            return Response("Gen2 RPC: a WebSocket, or POST a JSON-RPC frame\n", 400)
        # A browser lets any web site open a WebSocket to any address: one from a page served by
        # another host is refused (aioshelly sends no Origin)
        origin = req.headers.get("origin")
        if origin and origin.split("//")[-1].split("/")[0].lower() != req.headers.get("host", "").lower():
            return Response("not from another web site\n", 403)
        return Response(session=lambda reader, writer: self._rpc_session(reader, writer, key))

    async def _rpc_session(self, reader, writer, key):
        # aioshelly's connection (Home Assistant keeps it open): every request answered; once the
        # client has said who it is (its src), a NotifyStatus after each new telegram
        from .websocket import WebSocket    # (imported with the face on only)
        ws = WebSocket(reader, writer, key)
        client = []  # type: list  # its src, once it said it
        pusher = asyncio.create_task(self._notify(ws, client))
        try:
            while True:
                message = await ws.receive()
                if message is None:
                    break
                try:
                    request = json.loads(message)
                except ValueError:
                    break
                message = None
                if not isinstance(request, dict):
                    break
                if isinstance(request.get("src"), str) and not client:
                    client.append(request["src"])
                answer = self.shelly.frame(request)
                request = None
                if answer is not None:
                    await ws.send(answer)
        finally:
            pusher.cancel()

    async def _notify(self, ws, client):
        seen = self.app.latest.number
        while True:
            await sleep_ms(1000)        # at most one a second, whatever the meter's pace
            if client and self.app.latest.number != seen and self.shelly.fresh():
                seen = self.app.latest.number
                try:
                    pieces = self.shelly.notify(client[0])
                except MemoryError:     # this one is lost; the next telegram's comes
                    memory.lost()
                    continue
                try:
                    await ws.send(pieces)
                except (OSError, MemoryError) as e:
                    # gone, or a frame broken off after its head: the session ends (its reads
                    # see the socket closed), and so does this task, quietly
                    if isinstance(e, MemoryError):
                        memory.lost()
                    await close_stream(ws.writer)
                    return


async def _drain(body, left, most=4 << 20):
    # What the client still sends of a refused update is read and dropped, so that it gets the
    # answer (a TCP stack may reset a connection closed with bytes unread, and the answer with
    # it); up to a slot's size and a bit, a read at a time, each with the update's timeout.
    if left > most:
        return
    buf = bytearray(512)
    try:
        while left > 0:
            n = await wait_for(stream_readinto(body, memoryview(buf)[:min(left, 512)]), READ_TIMEOUT_S)
            if not n:
                return
            left -= n
    except (OSError, asyncio.TimeoutError):
        pass                            # gone, or stalled: the answer goes out anyway


def _error(text, status=400):
    return Response(json.dumps({"error": text}), status, _JSON)


def _redirected(req, setup):
    # the connectivity checks, and a request for any other host: the phone shows the settings
    ip = setup.split(":")[0]
    host = req.headers.get("host", ip).split(":")[0]
    return req.path in PROBES or (host != ip and not host.endswith(".local"))


def _authorized(header, password):
    """HTTP Basic, any user name, the password compared as digests in constant time (the same
    length whatever was typed)."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        given = a2b_base64(header[6:].strip())
    except ValueError:
        return False
    colon = given.find(b":")
    given = hashlib.sha256(given[colon + 1:] if colon >= 0 else b"").digest()
    wanted = hashlib.sha256(password.encode()).digest()
    return loops.equal(given, 0, wanted, 0, 32)
