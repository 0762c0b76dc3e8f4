/**
 * A real 5-node cluster on 127.0.0.1: separate node processes, real UDP and TLS sockets,
 * SQLite state. The deadlines are the spec's own numbers (discovery within 10 s), or
 * generous safety nets; nothing here measures speed.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import tls from "node:tls";
import { encodeSwim } from "../core/membership/codec.ts";
import type { NodeId } from "../core/ids.ts";
import { sealDatagram } from "./datagram.ts";
import { encodeFrame } from "./framing.ts";
import { loadNodeIdentity, tlsOptions } from "./pki.ts";
import { createTestNetwork, type MemberView, nodeEnv, NodeProcess, until } from "./testing.ts";

/** Set to a built binary (`deno task build`) to run the nodes from it instead of `deno run`. */
const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;
Deno.env.delete("MYCELIUM_BINARY"); // the nodes inherit the env and reject unknown MYCELIUM_*

const hasPromtool =
  new Deno.Command("sh", { args: ["-c", "command -v promtool"] }).outputSync().success;

function aliveIds(view: MemberView): Set<string> {
  return new Set(view.filter((m) => m.state === "alive").map((m) => m.node));
}

async function stateOf(
  viewer: NodeProcess,
  node: string,
): Promise<{ state: string; incarnation: number } | undefined> {
  const view = await viewer.json<MemberView>("/v1/members");
  return view.find((m) => m.node === node);
}

Deno.test({
  name: `cluster (${BINARY ? "binary" : "deno run"}): ` +
    "5 nodes form, survive kill -9, rejoin, reject a foreign network, fuzz, leave",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "mycelium-cluster-" });
    const procs: NodeProcess[] = [];
    try {
      const net1 = await createTestNetwork(dir, "main");
      const dataDirs = await Promise.all([0, 1, 2, 3, 4].map((i) => net1.node(`n${i}`)));
      const first = new NodeProcess("n0", dataDirs[0], nodeEnv(dataDirs[0], []), BINARY);
      procs.push(first);
      const seed = (await first.ready()).gossip;
      for (let i = 1; i < 5; i++) {
        procs.push(new NodeProcess(`n${i}`, dataDirs[i], nodeEnv(dataDirs[i], [seed]), BINARY));
      }
      const ids = await Promise.all(procs.map(async (p) => (await p.ready()).nodeId));

      await t.step("every node lists the other 4 as alive within 10 s", async () => {
        await until("formation", 10_000, async () => {
          for (let i = 0; i < 5; i++) {
            const alive = aliveIds(await procs[i].json<MemberView>("/v1/members"));
            if (!ids.every((id, j) => j === i || alive.has(id))) return false;
          }
          return true;
        });
        for (const p of procs) assert.equal((await p.get("/readyz")).status, 200);
      });

      await t.step("kill -9: all survivors declare it dead", async () => {
        const victim = procs[3];
        const before = (await stateOf(procs[0], ids[3]))!.incarnation;
        // A mutual-TLS stream from n0 to n3, kept up by n0 (reconnecting with backoff).
        const ping = await procs[0].get(`/v1/streams/ping?peer=${ids[3]}`);
        assert.equal(ping.status, 200, ping.body);
        assert.ok(JSON.parse(ping.body).rttMs >= 0);
        victim.kill("SIGKILL");
        await victim.exited;
        await until("every survivor declares n3 dead", 30_000, async () => {
          for (const i of [0, 1, 2, 4]) {
            if ((await stateOf(procs[i], ids[3]))?.state !== "dead") return false;
          }
          return true;
        });

        // Restart with the same data dir: a higher incarnation, alive everywhere again.
        const again = new NodeProcess("n3", dataDirs[3], nodeEnv(dataDirs[3], [seed]), BINARY);
        procs[3] = again;
        const addrs = await again.ready();
        assert.equal(addrs.nodeId, ids[3]);
        assert.ok(addrs.incarnation > before, `incarnation ${addrs.incarnation} <= ${before}`);
        await until("n3 alive everywhere with the new incarnation", 30_000, async () => {
          for (const i of [0, 1, 2, 4]) {
            const s = await stateOf(procs[i], ids[3]);
            if (s?.state !== "alive" || s.incarnation < addrs.incarnation) return false;
          }
          return true;
        });
        // n0's stream to n3 broke with the kill; it reconnects (new port, learned through
        // membership) and carries pings again.
        await until("the stream n0 -> n3 works again", 45_000, async () => {
          return (await procs[0].get(`/v1/streams/ping?peer=${ids[3]}`)).status === 200;
        });
        const m = (await procs[0].get("/metrics")).body;
        const reconnects = Number(/^mycelium_stream_reconnects_total (\d+)/m.exec(m)?.[1] ?? 0);
        assert.ok(reconnects >= 1, `reconnects ${reconnects}`);
      });

      await t.step(
        "a node of another network is rejected at TLS and its datagrams dropped",
        async () => {
          const other = await createTestNetwork(dir, "foreign");
          const foreign = await loadNodeIdentity(`${await other.node("f0")}/identity`);
          const target = procs[0].addresses!;
          const [host, port] = target.streams.split(":");
          // The foreign client presents a certificate of another CA: the handshake fails.
          const outcome = await new Promise<string>((resolve) => {
            const s = tls.connect({
              ...tlsOptions(foreign),
              host,
              port: Number(port),
              checkServerIdentity: () => undefined,
            });
            s.on("data", () => resolve("data"));
            s.on("error", () => resolve("error"));
            s.on("close", () => resolve("closed"));
            s.setTimeout(2000, () => {
              resolve("timeout");
              s.destroy();
            });
          });
          assert.notEqual(outcome, "data");
          const foreignDatagram = sealDatagram(
            foreign.isolationKey,
            foreign.nodeId as NodeId,
            encodeSwim({ t: "gossip", gossip: [] }),
          );
          const sock = dgram.createSocket("udp4");
          const [ghost, gport] = target.gossip.split(":");
          for (let i = 0; i < 5; i++) {
            await new Promise<void>((r) =>
              sock.send(foreignDatagram, Number(gport), ghost, () => r())
            );
          }
          sock.close();
          await until("rejections counted in /metrics", 10_000, async () => {
            const m = (await procs[0].get("/metrics")).body;
            const tlsFail = Number(
              /^mycelium_tls_handshake_failures_total (\d+)/m.exec(m)?.[1] ?? 0,
            );
            const mac = Number(
              /^mycelium_datagrams_rejected\{reason="mac"\} (\d+)/m.exec(m)?.[1] ?? 0,
            );
            return tlsFail >= 1 && mac >= 5;
          });
        },
      );

      await t.step({
        name: hasPromtool
          ? "promtool check metrics accepts /metrics"
          : "promtool check metrics (skipped: promtool not installed)",
        ignore: !hasPromtool,
        fn: async () => {
          const body = (await procs[1].get("/metrics")).body;
          const p = new Deno.Command("promtool", {
            args: ["check", "metrics"],
            stdin: "piped",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          const w = p.stdin.getWriter();
          await w.write(new TextEncoder().encode(body));
          await w.close();
          const out = await p.output();
          const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 0, text);
        },
      });

      await t.step(
        "fuzz: 100,000 random and mutated datagrams and frames; the node stays up",
        async () => {
          const target = procs[2].addresses!;
          const id = await loadNodeIdentity(`${dataDirs[0]}/identity`);
          const [ghost, gport] = target.gossip.split(":");
          const sock = dgram.createSocket("udp4");
          const valid = sealDatagram(
            id.isolationKey,
            id.nodeId as NodeId,
            encodeSwim({ t: "gossip", gossip: [] }),
          );
          let sent = 0;
          const rnd = (n: number) => Math.floor(Math.random() * n);
          for (let batch = 0; batch < 250; batch++) {
            const jobs: Promise<void>[] = [];
            for (let k = 0; k < 240; k++) {
              let d: Uint8Array;
              switch (k % 4) {
                case 0: // random bytes
                  d = crypto.getRandomValues(new Uint8Array(1 + rnd(1400)));
                  break;
                case 1: { // a bit flip in a valid datagram
                  d = valid.slice();
                  d[rnd(d.length)] ^= 1 << rnd(8);
                  break;
                }
                case 2: // a truncation
                  d = valid.subarray(0, rnd(valid.length));
                  break;
                default: // authentic envelope, garbage payload (passes the MAC, fails decoding)
                  d = sealDatagram(
                    id.isolationKey,
                    id.nodeId as NodeId,
                    crypto.getRandomValues(new Uint8Array(rnd(600))),
                  );
              }
              jobs.push(new Promise<void>((r) => sock.send(d, Number(gport), ghost, () => r())));
              sent++;
            }
            await Promise.all(jobs);
          }
          sock.close();
          assert.ok(sent >= 60_000);
          // Frames: garbage over raw TCP (fails the TLS handshake) and garbage frames inside a
          // valid mutual-TLS session.
          const [shost, sport] = target.streams.split(":");
          let frames = 0;
          for (let c = 0; c < 20; c++) {
            await new Promise<void>((resolve) => {
              const s = net.connect(Number(sport), shost, () => {
                s.write(crypto.getRandomValues(new Uint8Array(4096)));
              });
              // (Deno's TLS server leaves a failed handshake's connection open: close ours.)
              s.setTimeout(300, () => s.destroy());
              s.on("error", () => resolve());
              s.on("close", () => resolve());
            });
            frames++;
          }
          for (let c = 0; c < 10; c++) {
            await new Promise<void>((resolve) => {
              const s = tls.connect({ ...tlsOptions(id), host: shost, port: Number(sport) }, () => {
                for (let k = 0; k < 4000; k++) {
                  const m = k % 3;
                  const body = crypto.getRandomValues(new Uint8Array(rnd(64)));
                  if (m === 0) s.write(encodeFrame(1 + rnd(250), body)); // unknown types close it
                  else if (m === 1) s.write(crypto.getRandomValues(new Uint8Array(8)));
                  else s.write(encodeFrame(1, body));
                  frames++;
                }
                s.end();
              });
              s.setTimeout(2000, () => s.destroy());
              s.on("error", () => resolve());
              s.on("close", () => resolve());
            });
          }
          assert.ok(sent + frames >= 100_000, `${sent} datagrams + ${frames} frames`);
          const h = await procs[2].get("/healthz");
          assert.equal(h.status, 200);
          const m = (await procs[2].get("/metrics")).body;
          assert.match(m, /mycelium_datagrams_rejected\{reason="mac"\} [1-9]/);
          assert.match(m, /mycelium_datagrams_dropped_total\{reason="decode"\} [1-9]/);
          // Still a working member: everyone still sees it alive.
          await until("n2 still alive everywhere", 15_000, async () => {
            for (
              const i of [0, 1, 3, 4]
            ) if ((await stateOf(procs[i], ids[2]))?.state !== "alive") return false;
            return true;
          });
        },
      );

      await t.step("SIGTERM: the node leaves gracefully and exits 0", async () => {
        const p = procs[4];
        p.kill("SIGTERM");
        const status = await p.exited;
        assert.equal(status.code, 0, p.tail());
        await until(
          "n4 seen as left",
          10_000,
          async () => (await stateOf(procs[0], ids[4]))?.state === "left",
        );
      });
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
