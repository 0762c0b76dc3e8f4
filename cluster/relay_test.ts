/**
 * The delaying relay for real: a namespace lab whose node-to-node traffic is steered through
 * the relay, with echo servers and clients in the namespaces. Round trips must take at least
 * the two one-way delays the relay was told to add (a lower bound: the relay may only add,
 * never remove, time), and the lab's fault rules must still cut relayed traffic. Needs root
 * with ip, nft and tc; otherwise reported as skipped.
 */
import assert from "node:assert/strict";
import { NetnsLab, netnsUnavailable } from "./netns.ts";
import { DelayRelay } from "./relay.ts";

const why = netnsUnavailable();
const skip = why ? ` (skipped: needs root and ip/nft/tc — ${why})` : "";

const GOSSIP = 9000, STREAMS = 9001;

const ECHO = `
import dgram from "node:dgram";
import net from "node:net";
const addr = Deno.args[0];
const u = dgram.createSocket("udp4");
u.on("message", (m, r) => u.send(m, r.port, r.address));
u.bind(${GOSSIP}, addr, () =>
  net.createServer((c) => c.pipe(c)).listen(${STREAMS}, addr, () => console.log("ready")));
`;

/** Sends `n` UDP and `n` TCP pings; prints the round trips (ms; -1 = no answer in 1.5 s). */
const PINGER = `
import dgram from "node:dgram";
import net from "node:net";
const [to, n] = [Deno.args[0], Number(Deno.args[1])];
const wait = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r(-1), 1500))]);
const udp = [], tcp = [];
const u = dgram.createSocket("udp4");
// Bound to the gossip port, as a node is: the relay delivers to that port.
await new Promise((r) => u.bind(${GOSSIP}, r));
for (let k = 0; k < n; k++) {
  const t = performance.now();
  udp.push(await wait(new Promise((r) => {
    u.once("message", () => r(performance.now() - t));
    u.send("ping" + k, ${GOSSIP}, to);
  })));
}
u.close();
const c = net.connect(${STREAMS}, to);
c.on("error", () => {});
if (await wait(new Promise((r) => c.once("connect", () => r(0)))) === 0) {
  for (let k = 0; k < n; k++) {
    const t = performance.now();
    tcp.push(await wait(new Promise((r) => {
      c.once("data", () => r(performance.now() - t));
      c.write("x");
    })));
  }
}
c.destroy();
console.log(JSON.stringify({ udp, tcp }));
Deno.exit(0);
`;

function spawnIn(lab: NetnsLab, i: number, script: string, args: string[]) {
  const [cmd, ...pre] = lab.commandPrefix(i);
  return new Deno.Command(cmd, {
    args: [...pre, Deno.execPath(), "eval", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function withEcho<T>(lab: NetnsLab, i: number, fn: () => Promise<T>): Promise<T> {
  const child = spawnIn(lab, i, ECHO, [lab.addr(i)]);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /ready/, "the echo server did not start");
  try {
    return await fn();
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    await child.stderr.cancel();
  }
}

async function ping(lab: NetnsLab, from: number, to: number, n = 4) {
  const out = await spawnIn(lab, from, PINGER, [lab.addr(to), String(n)]).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `pinger failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text) as { udp: number[]; tcp: number[] };
}

Deno.test({
  name: "relay: adds its one-way delays to UDP and TCP round trips; faults still cut" + skip,
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await NetnsLab.create(3);
    let relay: DelayRelay | null = null;
    try {
      await lab.steerThroughRelay(GOSSIP, STREAMS);
      // 0 -> 1 takes 60 ms, 1 -> 0 takes 30 ms; everything else 5 ms.
      const delays = new Map([["0>1", 60], ["1>0", 30]]);
      relay = await DelayRelay.start(
        {
          size: lab.size,
          addr: (i) => lab.addr(i),
          alias: (i) => lab.alias(i),
          relayPort: (j) => lab.relayPort(j),
          gossipPort: GOSSIP,
          streamsPort: STREAMS,
        },
        { delay: (from, to) => delays.get(`${from}>${to}`) ?? 5 },
      );
      await withEcho(lab, 1, async () => {
        const rtt = await ping(lab, 0, 1);
        assert.equal(rtt.udp.length, 4, JSON.stringify({ rtt, stats: relay!.stats }));
        assert.equal(rtt.tcp.length, 4);
        for (const ms of [...rtt.udp, ...rtt.tcp]) {
          assert.ok(
            ms >= 89,
            `0 -> 1 -> 0 took ${ms} ms, below 90: ${JSON.stringify({ rtt, s: relay!.stats })}`,
          );
        }
        const short = await ping(lab, 2, 1);
        for (const ms of [...short.udp, ...short.tcp]) {
          assert.ok(ms >= 9, `a round trip 2 -> 1 -> 2 took ${ms} ms, below the 10 ms added`);
        }
        assert.ok(relay!.stats.datagrams >= 16, `relayed ${relay!.stats.datagrams} datagrams`);
        assert.equal(relay!.stats.connections, 2);

        // A partition still cuts relayed traffic (the rules match the relay's aliases).
        const cut = await lab.partition([[0], [1, 2]]);
        const blocked = await ping(lab, 0, 1, 2);
        assert.deepEqual(blocked.udp, [-1, -1]);
        assert.ok(blocked.tcp.every((ms) => ms === -1), JSON.stringify(blocked));
        const within = await ping(lab, 2, 1, 2);
        assert.ok(within.udp.every((ms) => ms >= 9), JSON.stringify(within));
        assert.ok((await cut.remove()) > 0);
        // A one-way cut 1 -> 0 stops the answers to 0's pings, not 0's pings themselves.
        const before = relay!.stats.datagrams;
        const oneway = await lab.oneway([1], [0]);
        const half = await ping(lab, 0, 1, 2);
        assert.deepEqual(half.udp, [-1, -1]);
        assert.equal(relay!.stats.datagrams - before, 4, "pings and echoes both reached the relay");
        await oneway.remove();
      });
    } finally {
      relay?.close();
      await lab.close();
    }
  },
});
