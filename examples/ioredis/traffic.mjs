// The benchmark's Node traffic client (bench.failover --client ioredis): SETs at a fixed rate
// through an ioredis client built with the recommended settings (options.mjs), until SIGTERM;
// then waits for the requests in flight and writes what it saw as JSON to $OUT.
//
// Environment: IOREDIS_SENTINELS (JSON [{host, port}]), IOREDIS_MASTER, REDIS_PASSWORD,
// RATE (writes/s), KEYS, PREFIX, RUN_ID, OUT. The Python side reads every key back from the
// primary the Sentinel majority names and counts the acknowledged writes that are gone.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import Redis from "ioredis";
import { sentinelOptions } from "./options.mjs";

const env = process.env;
const rate = Number(env.RATE || 1000);
const nKeys = Number(env.KEYS || 2000);
const prefix = env.PREFIX || "ioredis:";
const runId = env.RUN_ID || "run";
const redis = new Redis(
  sentinelOptions({
    sentinels: JSON.parse(env.IOREDIS_SENTINELS),
    name: env.IOREDIS_MASTER || "mymaster",
    password: env.REDIS_PASSWORD || undefined,
  }),
);
redis.on("error", () => {}); // counted per request below; the connection retries by itself

const t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;
const version = new Array(nKeys).fill(0);
const busy = new Uint8Array(nKeys);
const acked = []; // [key, version] of every acknowledged write
const okTimes = [];
const failStarts = [];
const errors = {};
let issued = 0, skipped = 0, failed = 0, inFlight = 0, next = 0, stopping = false;

function write() {
  const k = next;
  next = (next + 1) % nKeys;
  if (busy[k]) { skipped++; return; } // keep writes to one key in order
  const v = ++version[k];
  const start = now();
  busy[k] = 1; inFlight++; issued++;
  const value = JSON.stringify({ v, ts: Date.now() / 1000, run: runId, data: "x".repeat(64) });
  redis.set(prefix + k, value).then(
    () => { acked.push([k, v]); okTimes.push(now()); },
    (err) => {
      failed++; failStarts.push(start);
      const kind = String((err && err.message) || err).split(/[\s:]/)[0] || "error";
      errors[kind] = (errors[kind] || 0) + 1;
    },
  ).finally(() => { busy[k] = 0; inFlight--; });
}

// An absolute schedule: every 10 ms, as many writes as the clock says are due.
const timer = setInterval(() => {
  if (stopping) return;
  const due = Math.floor(now() * rate);
  while (issued + skipped < due) write();
}, 10);

process.on("SIGTERM", async () => {
  stopping = true;
  clearInterval(timer);
  const end = now();
  const deadline = performance.now() + 20000;
  while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(env.OUT, JSON.stringify({
    client: "ioredis",
    version: createRequire(import.meta.url)("ioredis/package.json").version,
    duration_s: end, issued, skipped, failed, in_flight_left: inFlight, errors,
    ok_times: okTimes, fail_starts: failStarts, acked,
  }));
  redis.disconnect();
  process.exit(0);
});
process.stdout.write("ready\n");
