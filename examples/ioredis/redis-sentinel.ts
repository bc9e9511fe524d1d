// redis-sentinel.ts: the app's Redis client for the Sentinel cluster, with the recommended
// settings (options.mjs, shared with the benchmark's Node client). Copy both files into the
// backend; see README.md, "The app's client: ioredis".
import Redis from "ioredis";
// @ts-ignore: plain JavaScript, shared with the benchmark client (allowJs also works)
import { sentinelOptions } from "./options.mjs";

export interface SentinelConfig {
  sentinels: { host: string; port: number }[];
  name: string; // the master name Sentinel monitors, e.g. "mymaster"
  password?: string; // from the environment or a secret store
  sentinelPassword?: string; // defaults to password
  username?: string;
}

/** Read the configuration from the environment: REDIS_SENTINELS="h1:26379,h2:26379,h3:26379",
 * REDIS_MASTER_NAME, REDIS_PASSWORD (and REDIS_SENTINEL_PASSWORD if it differs). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): SentinelConfig {
  const list = (env.REDIS_SENTINELS ?? "").split(",").filter(Boolean);
  if (!list.length) throw new Error("REDIS_SENTINELS is not set (host:port,host:port,...)");
  return {
    sentinels: list.map((hp) => {
      const i = hp.lastIndexOf(":");
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    }),
    name: env.REDIS_MASTER_NAME ?? "mymaster",
    password: env.REDIS_PASSWORD || undefined,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
    username: env.REDIS_USERNAME || undefined,
  };
}

/** One client per process: it follows failovers by itself (reconnects, resends). */
export function createRedis(config: SentinelConfig = configFromEnv()): Redis {
  const redis = new Redis(sentinelOptions(config));
  // Log reconnections: during a switchover they are expected, a stream of them is not.
  redis.on("reconnecting", (ms: number) => console.warn(`redis: reconnecting in ${ms} ms`));
  redis.on("error", (err: Error) => console.warn(`redis: ${err.message}`));
  return redis;
}
