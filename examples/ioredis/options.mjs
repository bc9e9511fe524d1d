// The recommended ioredis settings for the Redis Sentinel cluster: the one place they are
// written. redis-sentinel.ts (the app's wrapper) and traffic.mjs (the bench's Node client)
// both build their client from sentinelOptions(); README.md ("The app's client: ioredis")
// says why each is set.

/** Errors after which the connection is dropped, rediscovered through the Sentinels and the
 * command sent again (return 2): the node we talk to is no longer a writable primary. */
export const RECONNECT_ERRORS = ["READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN"];

export function reconnectOnError(err) {
  const msg = (err && err.message) || "";
  return RECONNECT_ERRORS.some((e) => msg.startsWith(e)) ? 2 : false;
}

/** At most one immediate reconnect per this many ms (see reconnectStrategy). */
export const IMMEDIATE_EVERY_MS = 500;

/** The reconnect delay (ms) for the `times`-th attempt since the last ready connection: the
 * first at once, then 50 ms more per attempt, at most 500 ms.
 *
 * A switchover drops the connection on purpose (the failover detector on +switch-master, or
 * the old primary's CLIENT KILL) when the Sentinels already name the new primary: waiting
 * 50 ms there was most of ioredis's extra stall over redis-py (measured: 0.39 s against
 * 0.34 s median). But `times` restarts at 1 after every ready connection, so "the first at
 * once" alone can turn a node that accepts the connection and then refuses writes (likely:
 * NOREPLICAS on a primary promoted after a crash, before its replica attaches) into a reconnect
 * loop with no pause at all (that version once failed 7165 requests through a crash; 0 in a
 * later run). Hence at most one immediate
 * reconnect per IMMEDIATE_EVERY_MS; the rest keep the 50 ms x attempt pace.
 *
 * At most 500 ms (was 1 s): after a crash the client has no failover detector (it is not
 * connected) and finds the new primary only at its next attempt; with a 1 s cap that came up
 * to ~0.65 s after Sentinel's promotion (measured: 5.04 s median stall against redis-py's
 * 4.3 s), with 500 ms 4.65 s (10 runs each). The price: two Sentinel lookups a second per
 * client while no primary answers, and maxRetriesPerRequest raised to keep the time budget. One
 * strategy per client (it keeps the time of its last immediate reconnect). */
export function reconnectStrategy(now = Date.now) {
  let lastImmediate = -Infinity;
  return (times) => {
    const t = now();
    if (times === 1 && t - lastImmediate >= IMMEDIATE_EVERY_MS) {
      lastImmediate = t;
      return 0;
    }
    return Math.min(50 * times, 500);
  };
}

/** Options for `new Redis(...)`: sentinels [{host, port}], name (the master name), the
 * passwords (from the environment or a secret store, never from code or the command line). */
export function sentinelOptions({ sentinels, name, password, sentinelPassword, username }) {
  return {
    sentinels, // every Sentinel, not one: any of them can answer while another is down
    name,
    role: "master",
    username,
    password,
    sentinelPassword: sentinelPassword ?? password,
    // Failover detection: subscribe to +switch-master on the Sentinels and reconnect at once,
    // instead of waiting for the old primary to close the connection or refuse a write. It
    // listens on up to sentinelMaxConnections Sentinels (default 10, so all three here).
    failoverDetector: true,
    // Learn Sentinels added later from SENTINEL SENTINELS after each lookup (the default).
    updateSentinels: true,
    // Reconnect to the primary: the first at once, then 50 ms more per attempt; see
    // reconnectStrategy() above. All Sentinels unreachable: 100 ms more per round, at most 1 s.
    retryStrategy: reconnectStrategy(),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    // A Sentinel that accepts the connection but does not answer (frozen) is left for the next
    // after 1 s: connectTimeout covers only the connect, and without this the lookup waits.
    sentinelCommandTimeout: 1000,
    reconnectOnError,
    // Commands issued while (re)connecting wait in the offline queue, in order...
    enableOfflineQueue: true,
    // ...for at most 30 reconnections each (about 13 s at the pace above: longer than a crash
    // failover, ~4-5 s), then fail with MaxRetriesPerRequestError instead of waiting forever.
    maxRetriesPerRequest: 30,
    connectTimeout: 1000, // a dead node is given up quickly; the next Sentinel answer is tried
    commandTimeout: 10000, // a frozen primary must not hold a request forever
    // INFO on every new connection: with role "master" a node that reports itself a replica
    // (a Sentinel still naming the old primary) is left for the next Sentinel, never written to.
    enableReadyCheck: true,
  };
}
