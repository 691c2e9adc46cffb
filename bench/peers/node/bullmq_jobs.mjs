// BullMQ's side of bench/peers (run by bench/peers/measure.py with the Node on PATH):
//   node bullmq_jobs.mjs worker REDIS_URL CONCURRENCY   one Worker; each job records when it started
//   node bullmq_jobs.mjs enqueue REDIS_URL < dues.json  one delayed job per due time (epoch seconds)
import { readFileSync } from "node:fs";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const QUEUE = "pickup-peers";
const [mode, redisUrl, concurrency] = process.argv.slice(2);
const address = new URL(redisUrl);
const connection = { host: address.hostname, port: Number(address.port) };
const nowSeconds = () => (performance.timeOrigin + performance.now()) / 1000;

if (mode === "worker") {
  const recorder = new IORedis(redisUrl);
  const worker = new Worker(QUEUE, async (job) => {
    const started = nowSeconds();  // first thing the job does: this is its start
    await recorder.rpush("peers:started", `${job.data.index} ${started}`);
  }, { connection, concurrency: Number(concurrency) });
  await worker.waitUntilReady();
  await recorder.set("peers:ready", "1");
  const stop = async () => {
    await worker.close();
    recorder.disconnect();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else if (mode === "enqueue") {
  const dues = JSON.parse(readFileSync(0, "utf8"));
  const queue = new Queue(QUEUE, { connection });
  // BullMQ takes a delay in whole milliseconds from the job's creation; round up, never early by choice.
  const jobs = dues.map((due, index) => ({
    name: "alert", data: { index },
    opts: { delay: Math.max(0, Math.ceil(due * 1000 - Date.now())), removeOnComplete: true },
  }));
  await queue.addBulk(jobs);
  await queue.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
