// WebSocket load generator for bench/run.py: one Node process (the `ws` package), pinned
// to its own core by the harness. It speaks three protocols: the product's (PROTOCOL.md),
// the Channels tutorial's ({"message": ...} relayed to a group) and the raw baseline's
// (the product's frames, minus the extras).
//
// Usage: node bench/load.js '<json config>'. Prints one JSON object per line on stdout:
// {"event": ...} lines while it runs, and a final {"event": "result", ...}.
//
// Correctness is checked on every delivery without JSON.parse: the sequence number (the
// product's and the raw server's `seq`, the tutorial's `data.i`) must be exactly the next
// one for that subscriber, else the frame counts as a gap or a duplicate/reorder.
"use strict";

const WebSocket = require("ws");
const { performance } = require("perf_hooks");

const cfg = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now(); // ms, same clock as `t`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const SEQ_KEY = Buffer.from(cfg.proto === "tutorial" ? '"i":' : '"seq":');
const T_KEY = Buffer.from('"t":');
const MESSAGE_TYPE = Buffer.from('"type":"message"');
const TUTORIAL_KEY = Buffer.from('"message":');

function readInt(buf, at) {
  let n = 0;
  let i = at;
  while (i < buf.length && (buf[i] === 0x20)) i++;
  for (; i < buf.length; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function readFloat(buf, at) {
  while (at < buf.length && buf[at] === 0x20) at++;
  let end = at;
  while (end < buf.length && end - at < 32) {
    const c = buf[end];
    if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x65 || c === 0x2b) end++;
    else break;
  }
  return parseFloat(buf.toString("latin1", at, end));
}

// ---------------------------------------------------------------- statistics

class Recorder {
  constructor(capacity) {
    this.lat = new Float64Array(capacity);
    this.n = 0;
    this.early = [];
    this.late = [];
  }
  reset(since) {
    this.n = 0;
    this.since = since || 0;
  }
  add(sentAt, ms) {
    if (sentAt >= this.since && this.n < this.lat.length) this.lat[this.n++] = ms;
  }
}

function percentiles(arr, n) {
  if (n === 0) return { p50: null, p99: null, max: null };
  const a = arr.slice(0, n).sort();
  const q = (p) => a[Math.min(n - 1, Math.floor(p * n))];
  return { p50: q(0.5), p99: q(0.99), max: a[n - 1] };
}

function median(values) {
  if (!values.length) return null;
  const a = Float64Array.from(values).sort();
  return a[Math.floor(a.length / 2)];
}

// ---------------------------------------------------------------- connections

function urlFor(kind) {
  if (cfg.proto === "tutorial") return cfg.url + "chat/" + cfg.stream.replace(/[^A-Za-z0-9_.-]/g, "_") + "/";
  if (kind === "pub" && cfg.token) return cfg.url + "?token=" + cfg.token;
  return cfg.url;
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error("connect timeout")); }, 30000);
    ws.once("open", () => { clearTimeout(timer); resolve(ws); });
    ws.once("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

async function openMany(n, url, concurrency, onOpen) {
  const out = new Array(n);
  let next = 0;
  let failed = 0;
  let firstError = null;
  async function worker() {
    while (next < n) {
      const i = next++;
      try {
        out[i] = await open(url);
        if (onOpen) await onOpen(out[i], i);
      } catch (e) {
        failed++;
        if (!firstError) firstError = String(e && e.message || e);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { sockets: out.filter(Boolean), failed, firstError };
}

// One subscriber: counts deliveries and checks that each seq is the next one.
class Subscriber {
  constructor(ws, rec, slow) {
    this.ws = ws;
    this.rec = rec;
    this.next = -1; // unknown until `subscribed` (or the first tutorial frame)
    this.received = 0;
    this.gaps = 0;
    this.dups = 0;
    this.closeCode = null;
    this.slow = slow;
    ws.on("close", (code) => { this.closeCode = code; });
  }

  subscribe(extra) {
    if (cfg.proto === "tutorial") {
      this.next = cfg.firstSeq || 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no subscribed frame")), 20000);
      const onFirst = (data) => {
        const frame = JSON.parse(data.toString());
        if (frame.type === "subscribed") {
          clearTimeout(timer);
          this.next = extra && extra.since ? extra.since.seq + 1 : frame.seq + 1;
          this.epoch = frame.epoch;
          this.ws.off("message", onFirst);
          this.ws.on("message", (buf) => this.onMessage(buf));
          resolve(frame);
        } else if (frame.type === "error") {
          clearTimeout(timer);
          reject(new Error(JSON.stringify(frame)));
        }
      };
      this.ws.on("message", onFirst);
      this.ws.send(JSON.stringify(Object.assign({ type: "subscribe", stream: cfg.stream }, extra || {})));
    });
  }

  listenTutorial() {
    this.ws.on("message", (buf) => this.onMessage(buf));
  }

  onMessage(buf) {
    if (cfg.proto !== "tutorial" && buf.indexOf(MESSAGE_TYPE) < 0) return;
    if (cfg.proto === "tutorial" && buf.indexOf(TUTORIAL_KEY) < 0) return;
    const at = buf.indexOf(SEQ_KEY);
    const seq = readInt(buf, at + SEQ_KEY.length);
    if (seq === this.next) {
      this.next++;
    } else if (seq > this.next) {
      this.gaps += seq - this.next;
      this.next = seq + 1;
    } else {
      this.dups++;
      return;
    }
    this.received++;
    const tAt = buf.indexOf(T_KEY);
    if (tAt >= 0) {
      const sentAt = readFloat(buf, tAt + T_KEY.length);
      this.rec.add(sentAt, now() - sentAt);
    }
  }
}

// The publisher: paced sends, counts acks (the tutorial has none: sent = published).
class Publisher {
  constructor(ws) {
    this.ws = ws;
    this.counter = 0; // tutorial `i` / unique id
    this.acked = 0;
    this.errors = 0;
    this.firstError = null;
    this.pad = "x".repeat(cfg.payload || 64);
    ws.on("message", (buf) => {
      if (cfg.proto === "tutorial") return;
      const s = buf.toString();
      const frame = JSON.parse(s);
      if (frame.type === "ack") this.acked++;
      else if (frame.type === "error") {
        this.errors++;
        if (!this.firstError) this.firstError = s.slice(0, 300);
      }
    });
  }

  sendOne() {
    const i = ++this.counter;
    const data = { i, t: now(), p: this.pad };
    if (cfg.proto === "tutorial") {
      this.ws.send(JSON.stringify({ message: data }));
      this.acked++;
    } else {
      this.ws.send(JSON.stringify({ type: "publish", stream: cfg.stream, data, id: cfg.idPrefix + i }));
    }
  }

  // Send `rate` messages per second for `seconds`, in 2 ms slices.
  async run(rate, seconds) {
    const start = now();
    const total = Math.round(rate * seconds);
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      while (sent < due) { this.sendOne(); sent++; }
      await sleep(2);
    }
    return { sent, seconds: (now() - start) / 1000 };
  }

  async waitAcks(target, timeoutMs) {
    const until = now() + timeoutMs;
    while (this.acked + this.errors < target && now() < until) await sleep(5);
    return this.acked;
  }
}

// ---------------------------------------------------------------- scenarios

async function setupFanout(subs, slow) {
  const rec = new Recorder(cfg.latencyCapacity || 4000000);
  const subscribers = [];
  const t0 = now();
  const join = async (ws, i) => {
    const s = new Subscriber(ws, rec, slow && i === 0);
    if (cfg.proto === "tutorial") s.listenTutorial();
    await s.subscribe();
    subscribers.push(s);
  };
  // One subscriber first, alone: on a fresh product process, concurrent first subscribes
  // race the hub's start (see bench/README.md) and get `unavailable`.
  const first = await openMany(1, urlFor("sub"), 1, join);
  const opened = await openMany(subs + (slow ? 1 : 0) - 1, urlFor("sub"), 200, (ws, i) => join(ws, i + 1));
  opened.failed += first.failed;
  opened.firstError = first.firstError || opened.firstError;
  if (opened.failed) throw new Error(`${opened.failed} subscriber connections failed: ${opened.firstError}`);
  const pub = new Publisher(await open(urlFor("pub")));
  emit({ event: "connected", subscribers: subscribers.length, seconds: (now() - t0) / 1000 });
  if (cfg.proto === "tutorial") {
    // The tutorial has no `subscribed` reply: a warm-up message proves every member joined.
    const base = pub.counter;
    await sleep(300);
    pub.sendOne();
    const until = now() + 10000;
    while (subscribers.some((s) => s.received < 1) && now() < until) await sleep(10);
    for (const s of subscribers) { s.next = base + 2; s.received = 0; s.gaps = 0; s.dups = 0; }
  }
  const slowOne = subscribers.find((s) => s.slow);
  if (slowOne) slowOne.ws._socket.pause(); // stops reading: the kernel buffers fill, then the server's
  return { rec, subscribers, pub, slowOne };
}

async function fanoutStep(ctx, rate, seconds) {
  const { rec, subscribers, pub, slowOne } = ctx;
  const readers = subscribers.filter((s) => !s.slow);
  rec.reset(now());
  const before = readers.map((s) => [s.received, s.gaps, s.dups]);
  const ackedBefore = pub.acked;
  const errorsBefore = pub.errors;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const wall0 = now();
  const sent = await pub.run(rate, seconds);
  const sendEnd = now();
  await pub.waitAcks(pub.counter, (cfg.drain || 3) * 1000);
  const published = pub.acked - ackedBefore;
  const expected = published * readers.length;
  const got = () => readers.reduce((sum, s, k) => sum + (s.received - before[k][0]), 0);
  // Wait for everything, or until nothing has arrived for a second (loss), at most
  // `drain` seconds: so that the next step starts from an empty pipe.
  const drainUntil = now() + (cfg.drain || 10) * 1000;
  let last = got();
  let lastChange = now();
  while (got() < expected && now() < drainUntil && now() - lastChange < 1000) {
    await sleep(5);
    const g = got();
    if (g !== last) { last = g; lastChange = now(); }
  }
  const wall1 = now();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const received = got();
  const gaps = readers.reduce((sum, s, k) => sum + (s.gaps - before[k][1]), 0);
  const dups = readers.reduce((sum, s, k) => sum + (s.dups - before[k][2]), 0);
  const lat = percentiles(rec.lat, rec.n);
  // A growing queue: the last fifth of the samples is much later than the first fifth.
  const fifth = Math.floor(rec.n / 5);
  const early = fifth ? median(rec.lat.subarray(0, fifth)) : null;
  const late = fifth ? median(rec.lat.subarray(rec.n - fifth, rec.n)) : null;
  const growing = early !== null && late > 2 * early + 100;
  const closedReaders = readers.filter((s) => s.closeCode !== null).length;
  const loss = Math.max(0, expected - received);
  const valid = gaps === 0 && dups === 0 && closedReaders === 0;
  const drainS = (wall1 - sendEnd) / 1000;
  const sustained = valid && loss === 0 && !growing && published > 0 && published === sent.sent
    && sent.sent / seconds >= 0.95 * rate && drainS <= (cfg.maxDrain || 0.5)
    && lat.p99 !== null && lat.p99 < (cfg.maxP99 || 500) && pub.errors === errorsBefore;
  const busyMs = (cpu.user + cpu.system) / 1000;
  return {
    offered_rate: rate,
    offered_deliveries: rate * readers.length,
    seconds,
    published,
    publish_errors: pub.errors - errorsBefore,
    first_publish_error: pub.firstError,
    expected,
    received,
    loss,
    gaps,
    duplicates: dups,
    deliveries_per_s: received / Math.max(seconds, (sendEnd - wall0) / 1000),
    p50_ms: lat.p50,
    p99_ms: lat.p99,
    max_ms: lat.max,
    early_p50_ms: early,
    late_p50_ms: late,
    growing_queue: growing,
    drain_s: drainS,
    readers_closed: closedReaders,
    slow_closed_code: slowOne ? slowOne.closeCode : null,
    client_cpu_pct: (100 * busyMs) / (wall1 - wall0),
    client_loop_util: elu.utilization,
    client_bound: elu.utilization > 0.9 || (100 * busyMs) / (wall1 - wall0) > 90,
    valid,
    sustained,
    t_start: wall0 / 1000,
    t_end: wall1 / 1000,
  };
}

async function fanout() {
  const ctx = await setupFanout(cfg.subs, !!cfg.slow);
  const steps = [];
  const run = async (rate) => {
    const step = await fanoutStep(ctx, rate, cfg.stepSeconds);
    steps.push(step);
    emit(Object.assign({ event: "step" }, step));
    await sleep(200);
    return step;
  };
  if (cfg.rates) {
    for (const r of cfg.rates) await run(r);
  } else {
    // Step up by `factor` until a step fails, then bisect between the last good and bad.
    let good = null;
    let bad = null;
    let rate = cfg.startRate;
    for (let i = 0; i < cfg.maxSteps; i++) {
      const step = await run(rate);
      if (step.sustained) good = rate; else bad = rate;
      if (bad === null) rate = Math.round(rate * cfg.factor);
      else if (good === null) rate = Math.max(1, Math.round(rate / (cfg.factor * cfg.factor)));
      else {
        if (bad / good < 1.2) break;
        rate = Math.round((good + bad) / 2);
      }
      if (bad !== null && good !== null && steps.filter((s) => s.offered_rate === rate).length) break;
    }
    if (good !== null && cfg.halfStep) await run(Math.max(1, Math.round(good / 2)));
  }
  const slowClosed = ctx.slowOne ? ctx.slowOne.closeCode : null;
  for (const s of ctx.subscribers) s.ws.terminate();
  ctx.pub.ws.terminate();
  emit({ event: "result", steps, slow_closed_code: slowClosed });
}

async function idle() {
  const t0 = now();
  const res = await openMany(cfg.conns, urlFor("sub"), cfg.concurrency || 256);
  const seconds = (now() - t0) / 1000;
  emit({ event: "opened", opened: res.sockets.length, failed: res.failed, first_error: res.firstError, seconds });
  await sleep(cfg.holdMs || 2500);
  const stillOpen = res.sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of res.sockets) ws.terminate();
  emit({
    event: "result",
    conns: cfg.conns,
    opened: res.sockets.length,
    failed: res.failed,
    first_error: res.firstError,
    still_open: stillOpen,
    seconds,
    conns_per_s: res.sockets.length / seconds,
  });
}

async function replay() {
  const rec = new Recorder(16);
  const pub = new Publisher(await open(urlFor("pub")));
  const sub = new Subscriber(await open(urlFor("sub")), rec, false);
  const first = await sub.subscribe();
  const base = first.seq;
  sub.ws.send(JSON.stringify({ type: "unsubscribe", stream: cfg.stream }));
  for (let i = 0; i < cfg.messages; i++) pub.sendOne();
  await pub.waitAcks(cfg.messages, 30000);
  const times = [];
  let valid = true;
  for (let r = 0; r < cfg.repeats; r++) {
    const ws = await open(urlFor("sub"));
    const s = new Subscriber(ws, rec, false);
    const t0 = now();
    const target = base + cfg.messages;
    const frame = await s.subscribe({ since: { epoch: first.epoch, seq: base } });
    const until = now() + 30000;
    while (s.next <= target && now() < until) await sleep(1);
    const ms = now() - t0;
    const ok = frame.recovered === true && s.received === cfg.messages && s.gaps === 0 && s.dups === 0;
    if (!ok) valid = false;
    times.push(ms);
    ws.terminate();
  }
  pub.ws.terminate();
  sub.ws.terminate();
  emit({
    event: "result",
    messages: cfg.messages,
    acked: pub.acked,
    publish_errors: pub.errors,
    first_publish_error: pub.firstError,
    repeats: cfg.repeats,
    replay_ms_median: median(times),
    replay_ms_min: Math.min(...times),
    valid,
  });
}

async function httpPublish() {
  const url = cfg.httpUrl;
  const headers = { authorization: "Bearer " + cfg.token, "content-type": "application/json" };
  const body = (i) => JSON.stringify({ data: { i, t: now() }, id: cfg.idPrefix + i });
  const probe = await fetch(url, { method: "POST", headers, body: body(0) });
  const probeText = await probe.text();
  if (probe.status === 404 || probe.status === 405) {
    emit({ event: "result", available: false, status: probe.status });
    return;
  }
  let i = 0;
  const statuses = {};
  const lat = [];
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const until = t0 + cfg.seconds * 1000;
  async function worker() {
    while (now() < until) {
      const k = ++i;
      const s = now();
      const r = await fetch(url, { method: "POST", headers, body: body(k) });
      await r.arrayBuffer();
      lat.push(now() - s);
      statuses[r.status] = (statuses[r.status] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: cfg.concurrency || 16 }, worker));
  const seconds = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const ok = (statuses[201] || 0) + (statuses[200] || 0);
  const p = percentiles(Float64Array.from(lat), lat.length);
  emit({
    event: "result",
    available: true,
    probe_status: probe.status,
    probe_body: probeText.slice(0, 200),
    statuses,
    requests_per_s: ok / seconds,
    p50_ms: p.p50,
    p99_ms: p.p99,
    client_cpu_pct: (100 * (cpu.user + cpu.system) / 1000) / (seconds * 1000),
    valid: ok === lat.length,
  });
}

const scenarios = { fanout, idle, replay, http: httpPublish };
scenarios[cfg.mode]()
  .then(() => process.exit(0))
  .catch((e) => {
    emit({ event: "error", error: String(e && e.stack || e) });
    process.exit(1);
  });
