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
.muted{color:#777;font-size:.85em}.warn{background:#fff3d6;color:#6b4700;padding:.5em;border-radius:.3em}
progress{width:80%;vertical-align:middle}code{overflow-wrap:anywhere}button:disabled{opacity:.5}
svg.plot{width:100%;height:auto;display:block}.plot text{font-size:11px;fill:#4a5468;paint-order:stroke;stroke:#fff;stroke-width:3px}.plot .axis{stroke:#999;stroke-width:1}
.imp{fill:#2563eb}.exp{fill:#16a34a}.part{opacity:.45}.pk{fill:#dc2626}.hpk{fill:#f59e0b}
.plot polyline{fill:none;stroke-width:2}.plot .net{stroke:#1d2330}.plot .l1{stroke:#2563eb;stroke-width:1}
.plot .l2{stroke:#16a34a;stroke-width:1}.plot .l3{stroke:#f59e0b;stroke-width:1}.key{font-size:.8em;color:#4a5468}
.key i{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;vertical-align:middle}
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
<section id="history" hidden><h2>Peaks (what capacity tariffs bill)</h2>
<div class="tiles"><div class="tile"><span>Average this quarter hour</span><b id="avg">-</b> W</div>
<div class="tile"><span>Highest quarter hour this month</span><b id="mpeak">-</b> W <span id="mpeak-t"></span></div>
<div class="tile"><span>3 highest hours on different days, average</span><b id="hpeak">-</b> W <span id="hpeak-t"></span></div></div>
<h2>Energy</h2><div class="tiles"><div class="tile"><span>Today, import / export</span><b id="today">-</b> kWh</div>
<div class="tile"><span>This month</span><b id="month">-</b> kWh</div><div class="tile"><span>This year</span><b id="year">-</b> kWh</div></div>
<p class="key"><i class="imp" style="background:#2563eb"></i>import (up)<i style="background:#16a34a"></i>export (down)<i style="background:#dc2626"></i>the month's highest quarter hour<i style="background:#f59e0b"></i>its 3 highest hours</p>
<h2>Power, the last 5 minutes (while this page is open)</h2><svg id="live" class="plot" role="img" aria-label="power, the last minutes"></svg>
<p class="key"><i style="background:#1d2330"></i>net (import up, export down)<i style="background:#2563eb"></i>L1<i style="background:#16a34a"></i>L2<i style="background:#f59e0b"></i>L3</p>
<h2>Per hour, the last 48 hours</h2><svg id="hours" class="plot" role="img" aria-label="energy per hour"></svg>
<h2>Per day</h2><svg id="days" class="plot" role="img" aria-label="energy per day"></svg>
<h2>Per month</h2><svg id="months" class="plot" role="img" aria-label="energy per month"></svg></section>
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
// The live power of the last 5 minutes: kept here, from the readings asked for every 3 s (the
// dongle keeps none of it). Reading -> [line, sign]: import up, export down.
const LIVE = {currentUsage: ["net", 1], currentDelivery: ["net", -1], currentUsageL1: ["l1", 1], currentDeliveryL1: ["l1", -1],
  currentUsageL2: ["l2", 1], currentDeliveryL2: ["l2", -1], currentUsageL3: ["l3", 1], currentDeliveryL3: ["l3", -1]};
const samples = [];
async function refresh() {
  try {
    const s = await (await fetch("/api/status")).json();
    $("dev").textContent = s.device_id + " \\u00b7 " + s.version;
    $("meter").textContent = s.meter || "";
    $("time").textContent = s.time || "-";
    const t = $("values"); t.replaceChildren();
    const now = {t: Date.now()};
    for (const [name, label, value, unit] of s.values) {
      t.appendChild(row([label, value, unit || ""]));
      const w = Number(value) * ({kW: 1000, W: 1}[unit] || NaN), m = LIVE[name];
      if (m && !isNaN(w)) now[m[0]] = (now[m[0]] || 0) + m[1] * w;
      if (name == "currentUsage") { $("import").textContent = value; $("import-unit").textContent = unit; }
      if (name == "currentDelivery") { $("export").textContent = value; $("export-unit").textContent = unit; }
    }
    if (!s.values.length) t.appendChild(row(["Waiting for the first telegram"]));
    if (now.net !== undefined) { samples.push(now); while (samples[0].t < now.t - 300000) samples.shift(); lines(); }
    const st = $("status"); st.replaceChildren();
    for (const k in NAMES) if (s.status[k] !== undefined && s.status[k] !== null) st.appendChild(row([NAMES[k], String(s.status[k])]));
    $("line").textContent = s.line;
    const r = await fetch("/api/v1/telegram");
    if (r.ok) $("telegram").textContent = await r.text();
  } catch (e) { $("line").textContent = "the dongle does not answer (" + e + ")"; }
}
refresh(); setInterval(refresh, 3000);
// The history's plots, drawn here as SVG from /api/p1dongle/history (history.py): energy in Wh,
// power in W, the meter's local times.
const SVG = "http://www.w3.org/2000/svg", W = 600, H = 180, TOP = 26, BOTTOM = 18;
function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name); for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e); return e; }
const kwh = wh => (wh / 1000).toFixed(3);
function scale(svg, up, down) {
  svg.replaceChildren(); svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  up = Math.max(up, 0); down = Math.max(down, 0); const span = (up + down) || 1, h = H - TOP - BOTTOM;
  return {zero: TOP + h * up / span, k: h / span}; }
function bars(id, rows, label, month) {
  const svg = $(id), up = Math.max(0, ...rows.map(r => r.import)), down = Math.max(0, ...rows.map(r => r.export));
  const s = scale(svg, up, down), bw = W / Math.max(rows.length, 1), top3 = month.top3 || [];
  rows.forEach((r, i) => {
    const g = el("g", {class: "bar", "data-import": r.import, "data-export": r.export}, svg), x = i * bw;
    let t = label(r, true) + ": import " + kwh(r.import) + " kWh, export " + kwh(r.export) + " kWh";
    if (r.gas) t += ", gas " + kwh(r.gas) + " m\\u00b3";
    if (r.water) t += ", water " + kwh(r.water) + " m\\u00b3";
    if (r.peak_w !== undefined) t += ", highest quarter hour " + r.peak_w + " W";
    if (r.hour_peak_w !== undefined) t += ", highest hour " + r.hour_peak_w + " W";
    if (r.hour_peaks_average_w !== undefined) t += ", 3 highest hours " + r.hour_peaks_average_w + " W";
    if (r.flags) t += " (" + r.flags.join(", ") + ": not all of it seen)";
    el("title", {}, g).textContent = t;
    const cls = r.flags ? " part" : "";
    el("rect", {class: "imp" + cls, x: x + bw * .1, width: bw * .8, y: s.zero - r.import * s.k, height: r.import * s.k}, g);
    if (r.export) el("rect", {class: "exp" + cls, x: x + bw * .1, width: bw * .8, y: s.zero, height: r.export * s.k}, g);
    const cx = x + bw / 2, ty = s.zero - r.import * s.k - 2;
    if (month.peak && r.peak_time == month.peak) el("path", {class: "pk", d: "M" + (cx - 5) + " " + (ty - 8) + "h10l-5 8z"}, g);
    if (top3.includes(r.hour_peak_time) || (id == "hours" && top3.includes(r.start.slice(0, 16) + ":00" + r.start.slice(16))))
      el("circle", {class: "hpk", cx: cx, cy: ty - 12, r: 3.5}, g);
    if (rows.length <= 16 || i % Math.ceil(rows.length / 12) == 0)
      el("text", {x: cx, y: H - 4, "text-anchor": "middle"}, svg).textContent = label(r, false);
  });
  el("line", {class: "axis", x1: 0, x2: W, y1: s.zero, y2: s.zero}, svg);
  el("text", {x: 2, y: 11}, svg).textContent = kwh(up) + " kWh";
  if (down) el("text", {x: 2, y: H - BOTTOM - 2}, svg).textContent = "-" + kwh(down) + " kWh";
}
function lines() {
  const svg = $("live"), now = Date.now(), sets = ["net", "l1", "l2", "l3"].filter(k => samples.some(p => p[k] !== undefined));
  const all = [].concat(...sets.map(k => samples.map(p => p[k]).filter(v => v !== undefined)));
  const s = scale(svg, Math.max(0, ...all), -Math.min(0, ...all)), span = 300000;
  sets.forEach(k => {
    const pts = samples.filter(p => p[k] !== undefined).map(p => (W - (now - p.t) * W / span).toFixed(1) + "," + (s.zero - p[k] * s.k).toFixed(1));
    el("polyline", {class: k, points: pts.join(" "), "data-points": pts.length}, svg);
  });
  el("line", {class: "axis", x1: 0, x2: W, y1: s.zero, y2: s.zero}, svg);
  el("text", {x: 2, y: 11}, svg).textContent = Math.round(Math.max(0, ...all)) + " W";
  el("text", {x: W - 2, y: H - 4, "text-anchor": "end"}, svg).textContent = "now";
  el("text", {x: 2, y: H - 4}, svg).textContent = "-5 min";
}
let month = {};
function peaks(h) {
  const p = h.peaks; $("history").hidden = false;
  $("avg").textContent = p.average_w ?? "-"; $("mpeak").textContent = p.month_peak_w ?? "-";
  $("mpeak-t").textContent = p.month_peak_time ? "at " + p.month_peak_time.slice(5, 16).replace("T", " ") : "";
  $("hpeak").textContent = p.hour_peaks_average_w ?? "-";
  month.peak = p.month_peak_time;
}
async function history() {
  try {
    const r = await fetch("/api/p1dongle/history"); if (!r.ok) return; const h = await r.json();
    peaks(h);
    const thisMonth = h.days.filter(d => h.months.length && d.date.startsWith(h.months[h.months.length - 1].month));
    month.top3 = thisMonth.filter(d => d.hour_peak_time).sort((a, b) => b.hour_peak_w - a.hour_peak_w).slice(0, 3).map(d => d.hour_peak_time);
    const last = a => a.length ? a[a.length - 1] : {import: 0, export: 0};
    const today = last(h.days), mo = last(h.months), year = mo.month ? mo.month.slice(0, 4) : "";
    const ym = h.months.filter(m => m.month.startsWith(year));
    $("today").textContent = kwh(today.import) + " / " + kwh(today.export);
    $("month").textContent = kwh(mo.import) + " / " + kwh(mo.export);
    $("year").textContent = kwh(ym.reduce((a, m) => a + m.import, 0)) + " / " + kwh(ym.reduce((a, m) => a + m.export, 0));
    bars("hours", h.hours, (r, long) => long ? r.start.slice(0, 16).replace("T", " ") : r.start.slice(11, 13), month);
    bars("days", h.days, (r, long) => long ? r.date : r.date.slice(8), month);
    bars("months", h.months, (r, long) => r.month.slice(long ? 0 : 2), month);
  } catch (e) {}
}
async function peaksOnly() {
  try {
    const r = await fetch("/api/p1dongle/history?peaks"), was = month.peak;
    if (r.ok) { peaks(await r.json()); if (month.peak != was) history(); }     // a new peak: marked at once
  } catch (e) {}
}
history(); setInterval(history, 60000); setInterval(peaksOnly, 10000);
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
<label><input id="web_private" type="checkbox"> the status page and the API want the password too</label>
<label><input id="mdns" type="checkbox"> found by itself on the network (mDNS: Home Assistant offers it as a HomeWizard P1 meter)</label>
<label><input id="shelly" type="checkbox"> answers as a Shelly Pro 3EM too (home batteries: Marstek Venus, B2500)</label></section>
<button id="save" type="submit">Save and restart</button>
<section><h2>Backup</h2><p class="muted">The backup leaves the keys and passwords out: a restore keeps the ones set here.</p>
<a href="/api/backup" download="p1dongle-settings.json">Download the settings</a>
<label for="restore">Restore from a backup</label><input id="restore" type="file" accept=".json,application/json"></section>
</form>
<section><h2>Firmware</h2><p id="fw-ver">-</p><p id="fw-back" class="warn" hidden></p>
<p id="fw-last" class="muted" hidden></p><p id="fw-why" hidden></p>
<div id="fw-image" hidden><label for="image">The new image (a release's .app.bin for this dongle's chip)</label>
<input id="image" type="file" accept=".bin"><button id="update" type="button">Update</button>
<progress id="fw-progress" max="100" value="0" hidden></progress> <span id="fw-pct"></span></div>
<p id="fw-files" hidden>A page cannot compile p1dongle's files for this MicroPython: from a checkout of p1dongle run
<code>tools/flash.py update --host <span id="fw-host"></span></code> (and <code>--password</code> if set).</p>
</section></main>
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
  for (const id of ["mdns", "shelly"]) $(id).checked = s.settings[id] == null ? s.defaults[id] : s.settings[id];
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
  c.web_private = $("web_private").checked; c.mdns = $("mdns").checked; c.shelly = $("shelly").checked;
  if ($("mqtt.host").value) {
    c.mqtt.host = $("mqtt.host").value; c.mqtt.port = Number($("mqtt.port").value || 1883); c.mqtt.user = $("mqtt.user").value || null;
  } else c.mqtt = null;
  if (!c.wifi.ssid) c.wifi = null;
  send("/api/settings", JSON.stringify(c));
});
$("restore").addEventListener("change", async () => { const f = $("restore").files[0]; if (f) send("/api/restore", await f.text()); });
// SHA-256 (FIPS 180-4) of an ArrayBuffer, as hex, for the update's X-SHA256: crypto.subtle only
// exists in a secure context (https), which http://p1dongle.local is not.
function sha256(data) {
  const n = data.byteLength, m = new Uint8Array((n + 72) & -64), v = new DataView(m.buffer), K = [], H = [], w = new Int32Array(64);
  m.set(new Uint8Array(data)); m[n] = 128; v.setUint32(m.length - 8, n / 2 ** 29); v.setUint32(m.length - 4, n * 8);
  for (let p = 2; K.length < 64; p++) { let q = 2; while (p % q) q++;     // the first 64 primes' roots
    if (q == p) { if (H.length < 8) H.push(p ** .5 % 1 * 2 ** 32 | 0); K.push(Math.cbrt(p) % 1 * 2 ** 32 | 0); } }
  const r = (x, k) => x >>> k | x << 32 - k;
  for (let o = 0; o < m.length; o += 64) {
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      if (i < 16) w[i] = v.getInt32(o + 4 * i);
      else { const x = w[i - 15], y = w[i - 2]; w[i] = (r(x, 7) ^ r(x, 18) ^ x >>> 3) + (r(y, 17) ^ r(y, 19) ^ y >>> 10) + w[i - 16] + w[i - 7]; }
      const t1 = h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + (e & f ^ ~e & g) + K[i] + w[i], t2 = (r(a, 2) ^ r(a, 13) ^ r(a, 22)) + (a & b ^ a & c ^ b & c);
      h = g; g = f; f = e; e = d + t1 | 0; d = c; c = b; b = a; a = t1 + t2 | 0;
    }
    [a, b, c, d, e, f, g, h].forEach((x, i) => H[i] = H[i] + x | 0);
  }
  return H.map(x => (x >>> 0).toString(16).padStart(8, "0")).join("");
}
const WAYS = {image: "the p1dongle image", files: "files on a stock MicroPython"};
function show(id, text) { $(id).hidden = !text; $(id).textContent = text || ""; }
function firmware(s) {
  $("fw-ver").textContent = "p1dongle " + s.version + (s.way ? " (" + WAYS[s.way] + ")" : "") + (s.probation ? ", on probation" : "");
  show("fw-back", s.came_back); show("fw-last", s.message && "Last update: " + s.message);
  show("fw-why", !s.way && s.why_not); $("fw-image").hidden = s.way != "image"; $("fw-files").hidden = s.way != "files";
}
async function loadFirmware() {
  try { const r = await fetch("/api/update"), s = await r.json(); if (r.ok) firmware(s); else show("fw-why", s.error); }
  catch (e) { show("fw-why", "the dongle does not say (" + e + ")"); }
}
// After an update the dongle resets. Until then the firmware that took it still answers, with that
// update's message; once it failed to answer, or answers without a message (a new boot), it is back.
function comeBack(down) {
  setTimeout(async () => {
    try {
      const s = await (await fetch("/api/update", {signal: AbortSignal.timeout(5000)})).json();
      if (!down && s.message) return comeBack(false);
      firmware(s); $("fw-progress").hidden = true; $("fw-pct").textContent = $("image").value = ""; $("update").disabled = false;
      say(s.came_back || "p1dongle " + s.version + " runs" + (s.probation ? ", on probation." : "."), !s.came_back);
    } catch (e) { comeBack(true); }
  }, 2000);
}
$("update").addEventListener("click", async () => {
  const f = $("image").files[0], x = new XMLHttpRequest(), p = $("fw-progress");
  if (!f) return say("Choose the new image first.", false);
  $("update").disabled = true;
  const data = await f.arrayBuffer();
  // XMLHttpRequest, not fetch: only it tells how much of the upload has gone
  x.upload.onprogress = e => { p.value = Math.floor(e.loaded * 100 / e.total); $("fw-pct").textContent = p.value + "%"; };
  x.onload = () => {
    let a = {}; try { a = JSON.parse(x.responseText); } catch (e) {}
    if (x.status == 200) { say(a.message + " This page shows the new version once the dongle is back.", true); comeBack(false); }
    else { say(a.error || "refused (" + x.status + ")", false); $("update").disabled = false; loadFirmware(); }
  };
  x.onerror = () => { say("the connection failed during the update", false); $("update").disabled = false; loadFirmware(); };
  x.open("POST", "/api/update"); x.setRequestHeader("Content-Type", "application/octet-stream"); x.setRequestHeader("X-SHA256", sha256(data));
  p.hidden = false; p.value = 0; $("fw-pct").textContent = ""; x.send(data);
});
$("fw-host").textContent = location.host;
load(); loadFirmware();
</script></body></html>
"""
