# The dongle's web pages: plain HTML with a little JavaScript, readable on a phone. Frozen into
# the image as bytes constants, they are served from flash and cost no heap. The pages fetch
# their data from the JSON API (web.py): /api/status, /api/v1/telegram, /api/settings.

STYLE = b"""body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.7em 1em;display:flex;gap:1em;align-items:baseline;flex-wrap:wrap}
header b{font-size:1.15em}header a{color:#9cc3ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
main{max-width:52em;margin:auto;padding:.8em}
section{background:#fff;border-radius:.5em;padding:.6em 1em;margin:.8em 0;box-shadow:0 1px 2px #0002}
h2{font-size:1em;margin:.3em 0 .6em;color:#4a5468}
.tiles{display:flex;gap:.8em;flex-wrap:wrap}.tile{flex:1;min-width:9em;background:#eef3fb;border-radius:.5em;padding:.5em .8em}
.tile span{display:block;font-size:.85em;color:#4a5468}.tile b{font-size:1.8em}
table{border-collapse:collapse;width:100%}td{padding:.25em .4em;border-bottom:1px solid #eee}td.v{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;word-break:break-all;font-size:.8em;background:#f7f7f7;padding:.5em;margin:0}
label{display:block;margin:.5em 0 .15em;font-size:.9em;color:#4a5468}
input,select{width:100%;box-sizing:border-box;padding:.45em;font-size:1em;border:1px solid #bbb;border-radius:.3em}
input[type=checkbox]{width:auto}button{font-size:1em;padding:.55em 1.2em;margin:.6em .4em .2em 0;border:0;border-radius:.3em;background:#2563eb;color:#fff}
#msg{padding:.6em;border-radius:.3em;margin:.6em 0}#msg.err{background:#fde2e2;color:#8a1111}#msg.ok{background:#dff5e3;color:#135c24}
.muted{color:#777;font-size:.85em}
"""

STATUS = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>p1dongle</title>
<link rel="stylesheet" href="/style.css"></head><body>
<header><b>p1dongle</b><a class="on" href="/">Status</a><a href="/settings">Settings</a><span id="dev" class="muted"></span></header>
<main>
<section><h2>Meter <span id="meter"></span></h2>
<div class="tiles"><div class="tile"><span>Power import</span><b id="import">-</b> <span id="import-unit"></span></div>
<div class="tile"><span>Power export</span><b id="export">-</b> <span id="export-unit"></span></div></div>
<p class="muted">Meter time <span id="time">-</span></p></section>
<section><h2>Readings</h2><table id="values"><tr><td>Waiting for the first telegram</td></tr></table></section>
<section><h2>Dongle</h2><table id="status"></table><p class="muted" id="line"></p></section>
<section><h2>Latest telegram</h2><pre id="telegram">-</pre></section>
</main>
<script>
const $ = id => document.getElementById(id);
function row(cells) { const tr = document.createElement("tr"); cells.forEach((c, i) => {
  const td = document.createElement("td"); td.textContent = c; if (i == 1) td.className = "v"; tr.appendChild(td); }); return tr; }
const NAMES = {uptime: "Uptime (s)", telegrams: "Telegrams", tag_failures: "Tag failures", crc_failures: "CRC failures",
  bad_frames: "Bad frames", dropped_bytes: "Dropped bytes", memory_errors: "Memory errors", tcp_clients: "TCP clients",
  mqtt: "MQTT", wifi_rssi: "Wi-Fi signal (dBm)", free_heap: "Free heap (bytes)", reset_cause: "Last reset"};
async function refresh() {
  try {
    const s = await (await fetch("/api/status")).json();
    $("dev").textContent = s.device_id + " \\u00b7 " + s.version;
    $("meter").textContent = s.meter || "";
    $("time").textContent = s.time || "-";
    const t = $("values"); t.replaceChildren();
    for (const [name, label, value, unit] of s.values) {
      t.appendChild(row([label, value, unit || ""]));
      if (name == "currentUsage") { $("import").textContent = value; $("import-unit").textContent = unit; }
      if (name == "currentDelivery") { $("export").textContent = value; $("export-unit").textContent = unit; }
    }
    if (!s.values.length) t.appendChild(row(["Waiting for the first telegram"]));
    const st = $("status"); st.replaceChildren();
    for (const k in NAMES) if (s.status[k] !== undefined && s.status[k] !== null) st.appendChild(row([NAMES[k], String(s.status[k])]));
    $("line").textContent = s.line;
    const r = await fetch("/api/v1/telegram");
    if (r.ok) $("telegram").textContent = await r.text();
  } catch (e) { $("line").textContent = "the dongle does not answer (" + e + ")"; }
}
refresh(); setInterval(refresh, 3000);
</script></body></html>
"""

SETTINGS = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>p1dongle settings</title>
<link rel="stylesheet" href="/style.css"></head><body>
<header><b>p1dongle</b><a href="/">Status</a><a class="on" href="/settings">Settings</a></header>
<main><form id="form" autocomplete="off">
<div id="msg" hidden></div>
<section><h2>Wi-Fi</h2>
<label for="wifi.ssid">Network name</label><input id="wifi.ssid">
<label for="wifi.password">Password</label><input id="wifi.password" type="password"></section>
<section><h2>Meter</h2>
<label for="meter">Meter</label><select id="meter"></select>
<label for="key">Encryption key (32 hex digits, from your grid operator)</label><input id="key" type="password">
<label for="auth_key">Authentication key (empty: Luxembourg's; none: key-only mode)</label><input id="auth_key" type="password"></section>
<section><h2>MQTT</h2>
<label for="mqtt.host">Broker (empty: no MQTT)</label><input id="mqtt.host">
<label for="mqtt.port">Port</label><input id="mqtt.port" type="number" min="1" max="65535">
<label for="mqtt.user">User</label><input id="mqtt.user">
<label for="mqtt.password">Password</label><input id="mqtt.password" type="password"></section>
<section><h2>Dongle</h2>
<label for="device_id">Name (MQTT topics, Home Assistant)</label><input id="device_id">
<label for="tcp_port">Telegram port (telnet, Home Assistant's DSMR integration)</label><input id="tcp_port" type="number" min="0" max="65535">
<label for="raw_port">Raw frames port (0: off)</label><input id="raw_port" type="number" min="0" max="65535">
<label for="web_password">Password for these settings</label><input id="web_password" type="password">
<label><input id="web_private" type="checkbox"> the status page and the API want the password too</label></section>
<button id="save" type="submit">Save and restart</button>
<section><h2>Backup</h2><p class="muted">The backup leaves the keys and passwords out: a restore keeps the ones set here.</p>
<a href="/api/backup" download="p1dongle-settings.json">Download the settings</a>
<label for="restore">Restore from a backup</label><input id="restore" type="file" accept=".json,application/json"></section>
</form></main>
<script>
const $ = id => document.getElementById(id);
const SECRETS = ["wifi.password", "key", "auth_key", "mqtt.password", "web_password"];
const TEXT = ["wifi.ssid", "mqtt.host", "mqtt.user", "device_id"];
const NUMBERS = ["mqtt.port", "tcp_port", "raw_port"];
function get(o, path) { for (const k of path.split(".")) { if (o == null) return undefined; o = o[k]; } return o; }
function say(text, ok, stay) { const m = $("msg"); m.hidden = false; m.textContent = text; m.className = ok ? "ok" : "err"; if (!stay) m.scrollIntoView(); }
async function load() {
  const r = await fetch("/api/settings"); const s = await r.json();
  for (const name of s.meters) { const o = document.createElement("option"); o.value = o.textContent = name; $("meter").appendChild(o); }
  $("meter").value = s.settings.meter || "auto";
  for (const id of TEXT.concat(NUMBERS)) { const v = get(s.settings, id); $(id).value = v == null ? "" : v; }
  if ($("mqtt.port").value == "") $("mqtt.port").value = 1883;
  if ($("tcp_port").value == "") $("tcp_port").value = s.defaults.tcp_port;
  if ($("raw_port").value == "") $("raw_port").value = 0;
  $("web_private").checked = !!s.settings.web_private;
  for (const id of SECRETS) $(id).placeholder = s.secrets[id] ? "set (leave empty to keep it)" : "not set";
  if (s.setup) say("First setup: enter your Wi-Fi, your meter's key and a password for these settings, then save.", true, true);
}
async function send(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: body});
  const a = await r.json();
  if (r.ok) say(a.message, true); else say(a.error, false);
}
$("form").addEventListener("submit", e => {
  e.preventDefault();
  const c = {wifi: {}, mqtt: {}};
  c.wifi.ssid = $("wifi.ssid").value || null;
  c.meter = $("meter").value; c.device_id = $("device_id").value || null;
  for (const id of ["tcp_port", "raw_port"]) c[id] = $(id).value === "" ? null : Number($(id).value);
  for (const id of SECRETS) { const v = $(id).value; const p = id.split("."); if (p.length == 1) c[id] = v; else c[p[0]][p[1]] = v; }
  c.web_private = $("web_private").checked;
  if ($("mqtt.host").value) {
    c.mqtt.host = $("mqtt.host").value; c.mqtt.port = Number($("mqtt.port").value || 1883); c.mqtt.user = $("mqtt.user").value || null;
  } else c.mqtt = null;
  if (!c.wifi.ssid) c.wifi = null;
  send("/api/settings", JSON.stringify(c));
});
$("restore").addEventListener("change", async () => { const f = $("restore").files[0]; if (f) send("/api/restore", await f.text()); });
load();
</script></body></html>
"""
