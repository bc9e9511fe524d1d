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
    // instead of waiting for the old primary to close the connection or refuse a write.
    failoverDetector: true,
    // Reconnect strategy (to the primary, and to the Sentinels): 50 ms more per attempt, at most
    // 1 s. Not 0 for the first: measured, an immediate first reconnect after a crash burnt the
    // per-request retries in a loop (7165 failed requests instead of 0).
    retryStrategy: (times) => Math.min(50 * times, 1000),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    reconnectOnError,
    // Commands issued while (re)connecting wait in the offline queue, in order...
    enableOfflineQueue: true,
    // ...for at most 20 reconnections each (about 15 s: longer than a crash failover, ~4-5 s),
    // then fail with MaxRetriesPerRequestError instead of waiting forever.
    maxRetriesPerRequest: 20,
    connectTimeout: 1000, // a dead node is given up quickly; the next Sentinel answer is tried
    commandTimeout: 10000, // a frozen primary must not hold a request forever
    enableReadyCheck: true,
  };
}
