/**
 * The live stats page (/stats/, staff only): every server process publishes its figures
 * to `staff:stats` once a second while this page is open (realtime/stats.py); the page
 * keeps the latest report of each process, adds them up, and draws deliveries per second
 * over the last minute. No polling: the figures come over the product's own WebSocket.
 * Stream names are shown as text only.
 * @module ops/stats
 */
import { pageClient } from "../realtime/client.js";

const config = JSON.parse(document.getElementById("stats-config").textContent);
const $ = (id) => document.getElementById(id);
/** A process that has not reported for this long is left out (ms). */
const STALE = 5000;
const MINUTE = 60;

/** @type {Map<string, {report: any, previous: any | null}>} */
const processes = new Map();
/** Deliveries per second, one point per report round, newest last. */
const points = [];

function rate(now, before, key) {
  if (!before) return 0;
  const seconds = (now.ts - before.ts) / 1000;
  return seconds > 0 ? Math.max(0, (now[key] - before[key]) / seconds) : 0;
}

function onReport(msg) {
  const report = msg.data;
  if (!report || typeof report.process !== "string") return;
  const known = processes.get(report.process);
  processes.set(report.process, { report, previous: known ? known.report : null });
  show();
}

function show() {
  const now = Date.now();
  const live = [...processes.values()].filter((p) => now - p.report.ts < STALE);
  const sum = (key) => live.reduce((total, p) => total + (Number(p.report[key]) || 0), 0);
  const sumRate = (key) => live.reduce((total, p) => total + rate(p.report, p.previous, key), 0);
  $("processes").textContent = `${live.length} server process${live.length === 1 ? "" : "es"}`;
  for (const key of ["connections", "subscriptions", "holes_filled", "recoveries_refused", "slow_closed"]) {
    $(key).textContent = sum(key).toLocaleString("en");
  }
  const delivered = sumRate("delivered");
  $("delivered-rate").textContent = Math.round(delivered).toLocaleString("en");
  $("published-rate").textContent = Math.round(sumRate("published")).toLocaleString("en");
  const published = sumRate("publish_count");
  $("publish-latency").textContent = published > 0 ? `${((1000 * sumRate("publish_seconds_sum")) / published).toFixed(1)} ms` : "–";
  // Read from Redis by every process alike: the freshest report's, not a sum.
  const archive = live.filter((p) => "archive_queued" in p.report).sort((x, y) => y.report.ts - x.report.ts)[0];
  for (const key of ["archive_queued", "archive_dead"]) {
    $(key).textContent = archive ? Number(archive.report[key]).toLocaleString("en") : "–";
  }
  $("archive_oldest_s").textContent = archive ? `${Math.round(Number(archive.report.archive_oldest_s))} s` : "–";
  $("redis").textContent = live.length && live.every((p) => p.report.redis_up === 1) ? "up" : "down";
  showBusiest(live);
  return delivered;
}

/** Once a second: the figures again (a process that stopped reporting drops out) and a
 * new point of the chart. */
function tick() {
  points.push(show());
  if (points.length > MINUTE) points.shift();
  drawChart();
}

function showBusiest(live) {
  const streams = new Map();
  for (const p of live) {
    for (const s of Array.isArray(p.report.busiest) ? p.report.busiest : []) {
      const entry = streams.get(s.stream) || { stream: String(s.stream), subscribers: 0, delivered: 0 };
      entry.subscribers += Number(s.subscribers) || 0;
      entry.delivered += Number(s.delivered) || 0;
      streams.set(s.stream, entry);
    }
  }
  const rows = [...streams.values()].sort((a, b) => b.delivered - a.delivered).slice(0, 5).map((s) => {
    const tr = document.createElement("tr");
    for (const value of [s.stream, s.subscribers.toLocaleString("en"), s.delivered.toLocaleString("en")]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  $("busiest").replaceChildren(...rows);
}

function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(10, ...points) * 1.1;
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((value, i) => {
    const x = (width * i) / (MINUTE - 1);
    const y = height - (height * value) / top;
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#666";
  ctx.font = "12px sans-serif";
  ctx.fillText(`${Math.round(top)} /s`, 4, 14);
}

const client = pageClient();
client.subscribe(config.stream, { onMessage: onReport });
setInterval(tick, 1000);

// For tests and for people debugging the page from the console.
window.statsPage = { client, points, processes };
