/**
 * A real 3-node nats-server cluster on loopback, for tests and benchmarks:
 * free ports picked by the kernel, JetStream stores under a temp dir, ready
 * when every node's monitoring `/healthz?js-enabled-only=true` answers 200
 * and a stream replicated ×3 can be created (a meta leader was elected),
 * never after a fixed sleep. Stopped by PID.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { connect, NatsError, type NatsConnection, type StreamConfig, type StreamInfo } from "nats";

export const NATS_SERVER_CANDIDATES = ["/usr/bin/nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"];

/** Path of nats-server, if installed. */
export function natsServerPath(): string | undefined {
  return NATS_SERVER_CANDIDATES.find((p) => fs.existsSync(p));
}

export interface NatsNode {
  name: string;
  clientPort: number;
  monitorPort: number;
  clusterPort: number;
  storeDir: string;
  process: ChildProcess | undefined;
  url: string;
}

function lastLogLine(file: string): string {
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function healthy(monitorPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`);
    return res.status === 200;
  } catch (err) {
    if (err instanceof TypeError) return false; // connection refused while the node starts
    throw err;
  }
}

export class NatsCluster {
  readonly nodes: NatsNode[];
  private constructor(readonly dir: string, nodes: NatsNode[], private readonly binary: string) {
    this.nodes = nodes;
  }

  /** Every node's client URL, comma-separated (what `--from` takes). */
  get servers(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /**
   * A port picked free may be taken (by another process's connection)
   * before its node binds it: that node exits at once, and the others still
   * come up healthy and place the 2-replica ready probe, but no ×3 stream
   * (every test of the file then fails creating MAILSTORE after 30 s). Such
   * a start is thrown away and made again on new ports.
   */
  static async start(size = 3): Promise<NatsCluster> {
    for (let attempt = 1; ; attempt++) {
      const cluster = await NatsCluster.startOnce(size);
      const exited = cluster.nodes.filter((n) => n.process?.exitCode !== null || n.process?.signalCode !== null);
      if (exited.length === 0) return cluster;
      const why = exited.map((n) => `${n.name}: ${lastLogLine(path.join(cluster.dir, `${n.name}.log`))}`).join("; ");
      await cluster.stop();
      if (attempt >= 3) throw new Error(`nats cluster: nodes exited at start ${attempt} times (${why})`);
    }
  }

  private static async startOnce(size: number): Promise<NatsCluster> {
    const binary = natsServerPath();
    if (!binary) throw new Error("nats-server is not installed");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-nats-"));
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      const clientPort = await freePort();
      nodes.push({
        name: `n${i + 1}`, clientPort, monitorPort: await freePort(), clusterPort: await freePort(),
        storeDir: path.join(dir, `n${i + 1}`), process: undefined, url: `nats://127.0.0.1:${clientPort}`,
      });
    }
    const cluster = new NatsCluster(dir, nodes, binary);
    for (const n of nodes) cluster.spawnNode(n);
    try {
      await cluster.waitReady();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /**
   * Unique per cluster: a node of another cluster (an orphan of a killed test
   * run keeps dialling its old routes) that reaches one of our reused ports
   * is refused, instead of joining with a duplicate name.
   */
  private get clusterName(): string {
    return `mailstore-${path.basename(this.dir).replace(/[^A-Za-z0-9_-]/g, "")}`;
  }

  private spawnNode(n: NatsNode): void {
    const routes = this.nodes.filter((o) => o !== n).map((o) => `nats://127.0.0.1:${o.clusterPort}`).join(",");
    const args = [
      "-a", "127.0.0.1", "-p", String(n.clientPort), "-m", String(n.monitorPort), "-n", n.name,
      "-js", "-sd", n.storeDir, "--cluster_name", this.clusterName, "--cluster", `nats://127.0.0.1:${n.clusterPort}`, "--routes", routes,
    ];
    const log = fs.openSync(path.join(this.dir, `${n.name}.log`), "a");
    const child = spawn(this.binary, args, { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    n.process = child;
    // A test runner that dies without afterAll must not leave servers behind.
    const reap = () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    };
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
  }

  /** Waits until every running node is healthy and a replicated stream can be created. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const running = () => this.nodes.filter((n) => n.process && n.process.exitCode === null && n.process.signalCode === null);
    for (;;) {
      const states = await Promise.all(running().map((n) => healthy(n.monitorPort)));
      if (states.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error(`nats cluster not healthy after ${timeoutMs} ms (logs in ${this.dir})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Healthy nodes may still lack a meta leader: a stream create succeeds only with one.
    const nc = await connect({ servers: running().map((n) => n.url), reconnectTimeWait: 100 });
    try {
      await addStreamWhenPlaceable(nc, { name: "READY_PROBE", subjects: ["ready.probe"], num_replicas: Math.min(3, running().length) }, deadline);
      // A restarted node still catching up can make this request time out too (seen: a 2 s TIMEOUT), after the
      // delete was done: the next try then finds no stream, which is what it wanted (not an error to try again on).
      await untilNatsAnswers(deadline, async () => {
        try {
          await (await nc.jetstreamManager({ timeout: 2_000 })).streams.delete("READY_PROBE");
        } catch (err) {
          if (!(err instanceof NatsError) || err.api_error?.err_code !== STREAM_NOT_FOUND) throw err;
        }
      });
    } finally {
      await nc.close();
    }
  }

  /** SIGKILLs node `i` (by PID) and waits for its exit. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.nodes[i].process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    process.kill(p.pid!, signal);
    await exited;
  }

  /** Starts node `i` again on its ports and store. */
  restart(i: number): void {
    this.spawnNode(this.nodes[i]);
  }

  /** Stops every node by PID and removes the store dirs. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.kill(i, "SIGTERM");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Adds a stream, asking again until `deadline` (epoch ms) while the cluster
 * cannot place it yet: no meta leader, or fewer current peers than replicas
 * (a peer lagging under load drops out of placement for a moment).
 * @returns the stream's info.
 */
export async function addStreamWhenPlaceable(nc: NatsConnection, config: Partial<StreamConfig> & { name: string }, deadline: number): Promise<StreamInfo> {
  return untilNatsAnswers(deadline, async () => (await nc.jetstreamManager({ timeout: 2_000 })).streams.add(config));
}

/** JetStream's "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Runs `fn` again every 100 ms while it fails with a NatsError, until `deadline` (epoch ms). */
async function untilNatsAnswers<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof NatsError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
