// WebSocket load generator for bench/run.py: one Node process (the `ws` package), pinned
// to its own core by the harness. It speaks three protocols: the product's (docs/protocol.md),
// the Channels tutorial's ({"message": ...} relayed to a group) and the raw baseline's
// (the product's frames, minus the extras).
//
// Usage: node bench/load.js '<json config>'. Prints one JSON object per line on stdout:
// {"event": ...} lines while it runs, and a final {"event": "result", ...}.
//
// Correctness is checked on every delivery without JSON.parse: the sequence number (the
// product's and the raw server's `seq`, the tutorial's `data.i`) must be exactly the next
// one for that subscriber, else the frame counts as a gap or a duplicate/reorder.
//
// Signed-in room members (modes `fill`, `occupancy`, and `fanout`/`idle` with
// `tokensFile`) connect with their own token (`?token=`, minted by the harness), subscribe
// the way the room page does (`subscribeExtra`: history and occupancy) and ask for the
// member list once subscribed (`presenceQuery`); their `presence`, `occupancy` and `error`
// frames are counted per connection.
"use strict";

const fs = require("fs");
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
const PRESENCE_TYPE = Buffer.from('"type":"presence"');
const OCCUPANCY_TYPE = Buffer.from('"type":"occupancy"');
const ERROR_TYPE = Buffer.from('"type":"error"');
const MEMBERS_KEY = Buffer.from('"members":');
const SUBSCRIBED_TYPE = Buffer.from('"type":"subscribed"');

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

// mean / p50 / p99 / max of a list of numbers (per-connection counts).
function spread(values) {
  if (!values.length) return { mean: null, p50: null, p99: null, max: null, min: null };
  const a = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of a) sum += v;
  const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
  return { mean: sum / a.length, p50: q(0.5), p99: q(0.99), max: a[a.length - 1], min: a[0] };
}

// ---------------------------------------------------------------- connections

function urlFor(kind) {
  if (cfg.proto === "tutorial") return cfg.url + "chat/" + cfg.stream.replace(/[^A-Za-z0-9_.-]/g, "_") + "/";
  if (kind === "pub" && cfg.token) return cfg.url + "?token=" + cfg.token;
  return cfg.url;
}

// The members' tokens (a JSON list written by the harness): connection i signs in with
// token i modulo their number; without a file, connections are anonymous.
let memberTokens = null;
function tokens() {
  if (memberTokens === null) memberTokens = cfg.tokensFile ? JSON.parse(fs.readFileSync(cfg.tokensFile, "utf8")) : [];
  return memberTokens;
}

function memberUrl(i) {
  const t = tokens();
  return t.length ? cfg.url + "?token=" + t[i % t.length] : urlFor("sub");
}

// The frames a room member gets besides messages, counted per connection.
class Extras {
  constructor() {
    this.presence = 0; // every `presence` frame: answers and change frames
    this.answers = 0; // those with `members` (answers to a query)
    this.presenceBytes = 0;
    this.occupancy = 0;
    this.lastOccupancy = null; // the text of the last `occupancy` frame
    this.errors = 0;
    this.firstError = null;
    this.answeredAt = null;
  }
  see(buf) {
    if (buf.indexOf(PRESENCE_TYPE) >= 0) {
      this.presence++;
      this.presenceBytes += buf.length;
      if (buf.indexOf(MEMBERS_KEY) >= 0) {
        this.answers++;
        if (this.answeredAt === null) this.answeredAt = now();
      }
    } else if (buf.indexOf(OCCUPANCY_TYPE) >= 0) {
      this.occupancy++;
      this.lastOccupancy = buf;
    } else if (buf.indexOf(ERROR_TYPE) >= 0) {
      this.errors++;
      if (!this.firstError) this.firstError = buf.toString().slice(0, 300);
    }
  }
}

// `localAddress`: the loopback source address (127.0.0.2 and on past the ephemeral ports
// one address has), or undefined for the default.
function open(url, localAddress) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024, localAddress });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error("connect timeout")); }, 30000);
    ws.once("open", () => { clearTimeout(timer); resolve(ws); });
    ws.once("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

// Open n sockets, `concurrency` at a time; `url` is a string or a function of the index.
// With `cfg.sources` > 1, socket i comes from 127.0.0.(1 + i % sources).
async function openMany(n, url, concurrency, onOpen) {
  const sources = cfg.sources || 1;
  const out = new Array(n);
  let next = 0;
  let failed = 0;
  let firstError = null;
  async function worker() {
    while (next < n) {
      const i = next++;
      const startedAt = now();
      try {
        out[i] = await open(typeof url === "function" ? url(i) : url, sources > 1 ? `127.0.0.${1 + (i % sources)}` : undefined);
        if (onOpen) await onOpen(out[i], i, startedAt);
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
    this.extras = null; // an Extras for room members: their non-message frames are counted
    this.historyUpto = -1; // with `history`: frames at or below the subscribed seq are history
    this.history = 0;
    this.resets = 0; // later `subscribed` frames (recovered: false): the server skipped or restarted seqs
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
          if (extra && extra.history) this.historyUpto = frame.seq;
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
    if (cfg.proto !== "tutorial" && buf.indexOf(MESSAGE_TYPE) < 0) {
      if (buf.indexOf(SUBSCRIBED_TYPE) >= 0) {
        // The server says it could not keep the promise (a hole, or a new epoch): go on
        // from where it says, and count it against the step.
        const frame = JSON.parse(buf.toString());
        this.resets++;
        this.next = frame.seq + 1;
        this.historyUpto = -1;
        this.epoch = frame.epoch;
      } else if (this.extras !== null) this.extras.see(buf);
      return;
    }
    if (cfg.proto === "tutorial" && buf.indexOf(TUTORIAL_KEY) < 0) return;
    const at = buf.indexOf(SEQ_KEY);
    const seq = readInt(buf, at + SEQ_KEY.length);
    if (seq <= this.historyUpto) {
      this.history++; // sent before the live ones, older than the subscription
      return;
    }
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

// After `subscribed`: ask who is here, as the room page does on every (re)subscribe.
function askPresence(s) {
  if (cfg.presenceQuery) s.ws.send(JSON.stringify({ type: "presence", stream: cfg.stream }));
}

// Subscribe one room member (its socket signed in with its own token) the way the room
// page does, count its extra frames, and ask for the member list.
async function joinMember(ws, rec, startedAt) {
  const s = new Subscriber(ws, rec, false);
  s.extras = new Extras();
  s.startedAt = startedAt;
  await s.subscribe(cfg.subscribeExtra);
  s.subscribedAt = now();
  askPresence(s);
  return s;
}

// Wait until every member got the answer to its presence query (at most `ms`).
async function waitAnswers(members, ms) {
  if (!cfg.presenceQuery) return true;
  const until = now() + ms;
  while (members.some((m) => m.extras.answers < 1) && now() < until) await sleep(10);
  return members.every((m) => m.extras.answers >= 1);
}

// Counts per member (fan-out, fill, idle): how many presence/occupancy/error frames.
function extrasSummary(members) {
  const with_ = members.filter((m) => m.extras !== null);
  if (!with_.length) return null;
  const errors = with_.reduce((n, m) => n + m.extras.errors, 0);
  return {
    members: with_.length,
    presence_frames: spread(with_.map((m) => m.extras.presence)),
    presence_answers: with_.reduce((n, m) => n + m.extras.answers, 0),
    presence_change_frames: spread(with_.map((m) => m.extras.presence - m.extras.answers)),
    presence_kib: spread(with_.map((m) => m.extras.presenceBytes / 1024)),
    occupancy_frames: spread(with_.map((m) => m.extras.occupancy)),
    errors,
    first_error: (with_.find((m) => m.extras.firstError) || { extras: {} }).extras.firstError || null,
  };
}

async function setupFanout(subs, slow) {
  const rec = new Recorder(cfg.latencyCapacity || 4000000);
  const subscribers = [];
  const t0 = now();
  const join = async (ws, i) => {
    const s = new Subscriber(ws, rec, slow && i === 0);
    if (cfg.proto === "tutorial") s.listenTutorial();
    if (cfg.tokensFile) s.extras = new Extras();
    await s.subscribe(cfg.subscribeExtra);
    askPresence(s);
    subscribers.push(s);
  };
  // One subscriber first, alone: on a fresh product process, concurrent first subscribes
  // race the hub's start (see bench/README.md) and get `unavailable`.
  const first = await openMany(1, memberUrl(0), 1, join);
  const opened = await openMany(subs + (slow ? 1 : 0) - 1, (i) => memberUrl(i + 1), 200, (ws, i) => join(ws, i + 1));
  opened.failed += first.failed;
  opened.firstError = first.firstError || opened.firstError;
  if (opened.failed) throw new Error(`${opened.failed} subscriber connections failed: ${opened.firstError}`);
  const pub = new Publisher(await open(urlFor("pub")));
  // Room members: the answers to their presence queries are in before the first step.
  await waitAnswers(subscribers.filter((s) => s.extras !== null), 20000);
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
  const before = readers.map((s) => [s.received, s.gaps, s.dups, s.resets]);
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
  const resets = readers.reduce((sum, s, k) => sum + (s.resets - before[k][3]), 0);
  const lat = percentiles(rec.lat, rec.n);
  // A growing queue: the last fifth of the samples is much later than the first fifth.
  const fifth = Math.floor(rec.n / 5);
  const early = fifth ? median(rec.lat.subarray(0, fifth)) : null;
  const late = fifth ? median(rec.lat.subarray(rec.n - fifth, rec.n)) : null;
  const growing = early !== null && late > 2 * early + 100;
  const closedReaders = readers.filter((s) => s.closeCode !== null).length;
  const loss = Math.max(0, expected - received);
  const valid = gaps === 0 && dups === 0 && resets === 0 && closedReaders === 0;
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
    recovered_false: resets,
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
        if (bad / good < (cfg.bisectRatio || 1.2)) break;
        rate = Math.round((good + bad) / 2);
      }
      if (bad !== null && good !== null && steps.filter((s) => s.offered_rate === rate).length) break;
    }
    if (good !== null && cfg.halfStep) await run(Math.max(1, Math.round(good / 2)));
  }
  const slowClosed = ctx.slowOne ? ctx.slowOne.closeCode : null;
  const extras = extrasSummary(ctx.subscribers);
  const history = ctx.subscribers.reduce((n, s) => n + s.history, 0);
  for (const s of ctx.subscribers) s.ws.terminate();
  ctx.pub.ws.terminate();
  emit({ event: "result", steps, slow_closed_code: slowClosed, extras, history_frames: history });
}

// Idle connections, opened `concurrency` at a time and held. With `tokensFile` each signs
// in and joins `cfg.stream` as a room member (subscribe, presence query) before it idles.
async function idle() {
  const t0 = now();
  const rec = new Recorder(16);
  const members = [];
  const join = cfg.tokensFile
    ? async (ws, i, startedAt) => { members.push(await joinMember(ws, rec, startedAt)); }
    : undefined;
  const progress = cfg.tokensFile
    ? setInterval(() => emit({ event: "progress", subscribed: members.length, conns: cfg.conns, seconds: (now() - t0) / 1000 }), 2000)
    : null;
  let res;
  try {
    res = await openMany(cfg.conns, cfg.tokensFile ? memberUrl : urlFor("sub"), cfg.concurrency || 256, join);
  } finally {
    if (progress) clearInterval(progress);
  }
  const seconds = (now() - t0) / 1000;
  const answered = await waitAnswers(members, 20000);
  emit({ event: "opened", opened: res.sockets.length, failed: res.failed, first_error: res.firstError, seconds });
  await sleep(cfg.holdMs || 2500);
  const stillOpen = res.sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const extras = extrasSummary(members);
  for (const ws of res.sockets) ws.terminate();
  emit({
    event: "result",
    conns: cfg.conns,
    opened: res.sockets.length,
    failed: res.failed,
    first_error: res.firstError,
    still_open: stillOpen,
    subscribed: cfg.tokensFile ? members.length : null,
    all_answered: cfg.tokensFile ? answered : null,
    extras,
    seconds,
    conns_per_s: res.sockets.length / seconds,
  });
}

// A room filling up: `conns` signed-in connections (tokens from `tokensFile`: distinct
// users, or one user in many tabs) open `concurrency` at a time, each subscribes and asks
// for the member list. Measured: the time until every one is subscribed (and answered),
// and the presence frames each one got from its connect until `settleMs` after the last
// subscribe (the change frames of the last joins are in by then). Then one member asks
// again: the answer's `total` (and, for one user, its `connections`) must be the truth,
// and each member's last `occupancy` frame must show every connection and user.
async function fill() {
  const rec = new Recorder(16);
  const members = [];
  const t0 = now();
  const progress = setInterval(() => {
    emit({ event: "progress", subscribed: members.length, conns: cfg.conns, seconds: (now() - t0) / 1000 });
  }, 1000);
  let res;
  try {
    res = await openMany(cfg.conns, memberUrl, cfg.concurrency || 200, async (ws, i, startedAt) => {
      members.push(await joinMember(ws, rec, startedAt));
    });
  } finally {
    clearInterval(progress);
  }
  const tSubscribed = now();
  const answered = await waitAnswers(members, 20000);
  const tAnswered = now();
  emit({ event: "filled", subscribed: members.length, seconds: (tSubscribed - t0) / 1000 });
  await sleep(cfg.settleMs || 2500);
  const tSettled = now();
  const extras = extrasSummary(members);
  const joinMs = spread(members.map((m) => m.subscribedAt - m.startedAt));
  // Every member's last occupancy figures against the truth.
  const users = cfg.expectUsers;
  let occupancyRight = 0;
  let occupancyExample = null;
  for (const m of members) {
    const text = m.extras.lastOccupancy;
    if (!text) continue;
    const f = JSON.parse(text.toString());
    if (f.connections === members.length && f.users === users) occupancyRight++;
    else if (occupancyExample === null) occupancyExample = { connections: f.connections, users: f.users };
  }
  // A fresh presence answer: how many users the server lists.
  let check = null;
  const checker = members[members.length - 1];
  if (checker && cfg.presenceQuery) {
    check = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: "no presence answer" }), 10000);
      const onFrame = (buf) => {
        if (buf.indexOf(PRESENCE_TYPE) < 0 || buf.indexOf(MEMBERS_KEY) < 0) return;
        clearTimeout(timer);
        checker.ws.off("message", onFrame);
        const f = JSON.parse(buf.toString());
        resolve({ total: f.total, listed: f.members.length, connections_of_first: f.members.length ? f.members[0].connections : null });
      };
      checker.ws.on("message", onFrame);
      askPresence(checker);
    });
  }
  const closed = members.filter((m) => m.closeCode !== null).length;
  for (const ws of res.sockets) ws.terminate();
  emit({
    event: "result",
    conns: cfg.conns,
    expect_users: users,
    opened: res.sockets.length,
    failed: res.failed,
    first_error: res.firstError,
    subscribed: members.length,
    closed_early: closed,
    subscribed_s: (tSubscribed - t0) / 1000,
    answered_s: answered ? (tAnswered - t0) / 1000 : null,
    all_answered: answered,
    settle_s: (tSettled - tAnswered) / 1000,
    conns_per_s: members.length / ((tSubscribed - t0) / 1000),
    join_ms: joinMs,
    extras,
    occupancy_right: occupancyRight,
    occupancy_wrong_example: occupancyExample,
    check,
    t_start: t0 / 1000,
    t_subscribed: tSubscribed / 1000,
    t_end: tSettled / 1000,
  });
}

// Occupancy against the truth while viewers come and go. One watcher (signed in as its
// own user) subscribes with `"occupancy": true` and records every `occupancy` frame;
// `viewers` viewers (signed in, `users` distinct users: some have two tabs) all connect,
// `concurrency` at a time, then come and go over `churnSeconds` on this schedule of the
// target count (fractions of that time): 0-0.4 all with churn (a share `churnPerSecond`
// of them replaced per second), 0.4-0.7 down to 40 %, then 40 % with churn. The true count
// moves when a viewer's `subscribed` arrives and when this side closes one. After the
// last change the watcher listens `settleSeconds` more, and on (up to `maxSettleSeconds`)
// while the last figure is still wrong. Reported, for connections and
// users alike: the error of the figure shown (the last frame) over time against the
// truth of the last `lagSeconds` (any value the truth had then counts as right), the
// time after the last change until the figure is right for good, the largest error
// from `lagSeconds` after the last change on, and the last figure against the truth.
async function occupancyChurn() {
  const N = cfg.viewers;
  const U = Math.max(1, cfg.users || N);
  const T = cfg.churnSeconds * 1000;
  const lag = (cfg.lagSeconds || 2) * 1000;
  const toks = tokens();
  const rec = new Recorder(16);
  const frames = []; // [t, connections, users]
  const truth = []; // [t, connections, users], one entry per change
  const inRoom = new Map(); // viewer id -> { ws, user }
  const userCounts = new Map();
  let watcherIn = 0;
  let pending = 0;
  let made = 0;
  let failed = 0;
  let firstError = null;
  let closedByServer = 0;
  const record = () => truth.push([now(), inRoom.size + watcherIn, userCounts.size + watcherIn]);

  const watcherWs = await open(cfg.url + "?token=" + cfg.watcherToken);
  watcherWs.on("message", (buf) => {
    if (buf.indexOf(OCCUPANCY_TYPE) < 0) return;
    const f = JSON.parse(buf.toString());
    frames.push([now(), f.connections, f.users]);
  });
  const watcher = new Subscriber(watcherWs, rec, false);
  await watcher.subscribe({ occupancy: true });
  watcherIn = 1;
  record();

  const startViewer = () => {
    const id = made++;
    const user = id % U;
    pending++;
    (async () => {
      let ws = null;
      try {
        ws = await open(cfg.url + "?token=" + toks[user % toks.length]);
        const s = new Subscriber(ws, rec, false);
        await s.subscribe(cfg.subscribeExtra);
        askPresence(s);
        inRoom.set(id, { ws, user });
        userCounts.set(user, (userCounts.get(user) || 0) + 1);
        record();
        ws.on("close", () => { if (inRoom.has(id)) { closedByServer++; forget(id); } });
      } catch (e) {
        failed++;
        if (!firstError) firstError = String(e && e.message || e);
        if (ws !== null) ws.terminate();
      } finally {
        pending--;
      }
    })();
  };
  const forget = (id) => {
    const v = inRoom.get(id);
    if (!v) return null;
    inRoom.delete(id);
    const n = userCounts.get(v.user) - 1;
    if (n > 0) userCounts.set(v.user, n); else userCounts.delete(v.user);
    record();
    return v;
  };
  const closeViewer = (id) => {
    const v = forget(id);
    if (v) v.ws.close(1000);
  };
  const randomOpen = () => {
    const ids = Array.from(inRoom.keys());
    return ids[Math.floor(Math.random() * ids.length)];
  };
  const churnPerTick = Math.max(1, Math.round(N * (cfg.churnPerSecond || 0.1) * 0.05));
  const maxPending = cfg.concurrency || 200;
  // One step of the schedule: replace some (churn), then open or close toward `want`.
  const tick = (want, churn) => {
    if (churn) {
      for (let c = 0; c < churnPerTick && inRoom.size > 0; c++) {
        closeViewer(randomOpen());
        startViewer();
      }
    }
    const have = inRoom.size + pending;
    if (have < want) {
      for (let c = Math.min(want - have, maxPending - pending); c > 0; c--) startViewer();
    } else {
      for (let c = Math.min(inRoom.size, have - want); c > 0; c--) closeViewer(randomOpen());
    }
  };
  const t0 = now();
  let lastProgress = t0;
  const progress = () => {
    if (now() - lastProgress < 1000) return;
    lastProgress = now();
    const shown = frames.length ? frames[frames.length - 1] : null;
    emit({ event: "progress", seconds: (now() - t0) / 1000, open: inRoom.size + watcherIn, shown: shown ? shown[1] : null });
  };
  // Every viewer comes first, `concurrency` connecting at a time.
  const upUntil = t0 + (cfg.maxRampSeconds || 120) * 1000;
  while (inRoom.size < N && now() < upUntil) {
    tick(N, false);
    progress();
    await sleep(50);
  }
  const tFull = now();
  // Then, over `churnSeconds`: all with churn, down to 40 %, 40 % with churn.
  for (;;) {
    const t = now() - tFull;
    if (t >= T) break;
    const x = t / T;
    tick(Math.round(x < 0.4 ? N : x < 0.7 ? N * (1 - (0.6 * (x - 0.4)) / 0.3) : 0.4 * N), x < 0.4 || x >= 0.7);
    progress();
    await sleep(50);
  }
  const until = now() + 20000;
  while (pending > 0 && now() < until) await sleep(10);
  const tLast = truth[truth.length - 1][0];
  const final = truth[truth.length - 1];
  const right = () => {
    const f = frames[frames.length - 1];
    return f !== undefined && f[1] === final[1] && f[2] === final[2];
  };
  const minEnd = tLast + cfg.settleSeconds * 1000;
  const maxEnd = tLast + Math.max(cfg.settleSeconds, cfg.maxSettleSeconds || 0) * 1000;
  let rightSince = null;
  for (;;) {
    const t = now();
    if (right()) rightSince = rightSince === null ? t : rightSince; else rightSince = null;
    // Done: the minimum is over and the figures have been right for a while (a frame
    // comes at most once a second, and only on a change), or the maximum is reached.
    if (t >= maxEnd || (t >= minEnd && rightSince !== null && t - rightSince >= 2000)) break;
    if (now() - lastProgress >= 5000) {
      lastProgress = now();
      const f = frames[frames.length - 1];
      emit({ event: "progress", seconds: (t - t0) / 1000, open: final[1], shown: f ? f[1] : null, users: final[2], shown_users: f ? f[2] : null });
    }
    await sleep(50);
  }
  const obsEnd = now();

  // The value of a series (sorted by time) at t: its last entry at or before t.
  const at = (series, t, k) => {
    let v = null;
    for (const e of series) { if (e[0] <= t) v = e[k]; else break; }
    return v;
  };
  const rangeIn = (t1, t2, k) => {
    let lo = at(truth, t1, k);
    let hi = lo;
    for (const e of truth) {
      if (e[0] <= t1) continue;
      if (e[0] > t2) break;
      if (lo === null || e[k] < lo) lo = e[k];
      if (hi === null || e[k] > hi) hi = e[k];
    }
    return [lo, hi];
  };
  const judge = (k) => {
    let maxLagged = 0;
    let sumLagged = 0;
    let samples = 0;
    let maxRaw = 0;
    let maxAfter = 0;
    const firstFrame = frames.length ? frames[0][0] : obsEnd;
    for (let t = firstFrame; t <= obsEnd; t += 100) {
      const shown = at(frames, t, k);
      const [lo, hi] = rangeIn(t - lag, t, k);
      const err = shown === null || lo === null ? 0 : Math.max(0, shown - hi, lo - shown);
      maxLagged = Math.max(maxLagged, err);
      sumLagged += err;
      samples++;
      if (shown === null) continue;
      const exact = Math.abs(shown - at(truth, t, k));
      maxRaw = Math.max(maxRaw, exact);
      if (t >= tLast + lag) maxAfter = Math.max(maxAfter, exact);
    }
    // Settled: from the first frame of the final run of right figures (0 when it began
    // before the last change), or never.
    let settle = null;
    const last = frames.length ? frames[frames.length - 1] : null;
    if (last && last[k] === final[k]) {
      let j = frames.length - 1;
      while (j > 0 && frames[j - 1][k] === final[k]) j--;
      settle = Math.max(0, frames[j][0] - tLast) / 1000;
    }
    return {
      max_error_lagged: maxLagged,
      mean_error_lagged: samples ? sumLagged / samples : null,
      max_error_unlagged: maxRaw,
      settle_s: settle,
      max_abs_error_after_settling: maxAfter,
      last_figure: last ? last[k] : null,
      truth: final[k],
      last_error: last ? Math.abs(last[k] - final[k]) : null,
    };
  };
  const thin = [];
  for (let t = t0; t <= obsEnd; t += 250) thin.push([Math.round(t - t0), at(truth, t, 1), at(truth, t, 2)]);
  const result = {
    event: "result",
    viewers: N,
    users: U,
    churn_seconds: cfg.churnSeconds,
    settle_seconds: cfg.settleSeconds,
    lag_seconds: lag / 1000,
    opened: made,
    failed,
    first_error: firstError,
    closed_by_server: closedByServer,
    truth_changes: truth.length,
    peak: truth.reduce((m, e) => Math.max(m, e[1]), 0),
    frames: frames.length,
    negative: frames.some((f) => f[1] < 0 || f[2] < 0),
    connections: judge(1),
    users_figure: judge(2),
    all_in_s: (tFull - t0) / 1000,
    last_change_s: (tLast - t0) / 1000,
    observed_after_last_change_s: (obsEnd - tLast) / 1000,
    timeline_truth: thin,
    timeline_frames: frames.map((f) => [Math.round(f[0] - t0), f[1], f[2]]),
    t_start: t0 / 1000,
    t_end: obsEnd / 1000,
  };
  for (const v of inRoom.values()) v.ws.terminate();
  watcherWs.terminate();
  emit(result);
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

const scenarios = { fanout, idle, fill, occupancy: occupancyChurn, replay, http: httpPublish };
scenarios[cfg.mode]()
  .then(() => process.exit(0))
  .catch((e) => {
    emit({ event: "error", error: String(e && e.stack || e) });
    process.exit(1);
  });
