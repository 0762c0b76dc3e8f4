/**
 * Spores on 5 real node processes (127.0.0.1, mutual-TLS streams): discovery through each
 * source in the order DESIGN.md gives (the founder writes the Master Seed; joiners come in
 * through a seed file, a seed URL after skipping a tampered seed, a Rhizomorph contact, a
 * Latent entry point, and, after `kill -9`, the cached spore); the Latent map converges to
 * every node's signed entry; forged, foreign, future-dated and replayed entries and garbage
 * frames sent by a node of the network are discarded and counted, never accepted.
 * Runs against the built binary when MYCELIUM_BINARY is set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFile, writeFile } from "node:fs/promises";
import { type LatentEntry, signLatentEntry, verifyLatentEntry } from "../core/spores/latent.ts";
import { readSeed } from "../core/spores/seed.ts";
import type { NodeId } from "../core/ids.ts";
import { RecordSigner, RecordVerifier } from "./consensus.ts";
import { loadNodeIdentity } from "./pki.ts";
import { encodeSpores, FRAME_SPORES } from "./spores_codec.ts";
import { createTestNetwork, nodeEnv, NodeProcess, sendRawFrames, until } from "./testing.ts";

const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;
Deno.env.delete("MYCELIUM_BINARY");

interface SporesView {
  latentEntries: number;
  discarded: Record<string, number>;
  seed: { version: number; entries: number } | null;
  seedReads: Record<string, { ok: boolean; problem?: string }>;
  bootstrap: { source: string; target: string | null; attempts: unknown[] } | null;
}

/** The value of a metric line `name{labels} value` in a Prometheus scrape (0 if absent). */
function metric(scrape: string, name: string, label = ""): number {
  for (const line of scrape.split("\n")) {
    if (line.startsWith(name) && line.includes(label)) return Number(line.split(" ").pop());
  }
  return 0;
}

Deno.test({
  name: `spores (${BINARY ? "binary" : "deno run"}): discovery through every source in order; ` +
    "Latent entries converge; forged, foreign, future-dated and stale entries are discarded",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "mycelium-spores-" });
    const procs = new Map<string, NodeProcess>();
    try {
      const net = await createTestNetwork(dir, "sp");
      const other = await createTestNetwork(dir, "other");
      const names = ["a", "b", "c", "d", "e"];
      const dataDirs = Object.fromEntries(
        await Promise.all(names.map(async (n) => [n, await net.node(n)] as const)),
      );
      const intruder = await loadNodeIdentity(join(await net.node("x"), "identity"));
      const foreign = await loadNodeIdentity(join(await other.node("y"), "identity"));
      const master = join(dir, "shared", "master.seed");
      const fast = {
        MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
        MYCELIUM_SPORES_SEED_WRITE_INTERVAL_MS: "500",
        MYCELIUM_SPORES_GOSSIP_PUSH_PULL_MS: "1000",
        MYCELIUM_JOIN_ATTEMPT_TIMEOUT_MS: "1500",
      };
      const start = (name: string, extra: Record<string, string>, seeds: string[] = []) => {
        const p = new NodeProcess(
          name,
          dataDirs[name],
          nodeEnv(dataDirs[name], seeds, { ...fast, ...extra }),
          BINARY,
        );
        procs.set(name, p);
        return p;
      };
      const view = (p: NodeProcess) => p.json<SporesView>("/v1/spores");
      const joinedVia = async (p: NodeProcess) => {
        await until(
          `${p.name} bootstrapped`,
          20_000,
          async () => (await view(p)).bootstrap !== null,
        );
        return (await view(p)).bootstrap!;
      };

      const a = start("a", { MYCELIUM_SPORES_SEED_WRITE: master });
      await a.ready();
      await t.step("the founder has no source and writes the Master Seed", async () => {
        assert.equal((await joinedVia(a)).source, "founder");
        await until("the master seed", 10_000, async () => (await view(a)).seed !== null);
        const verifier = new RecordVerifier();
        const r = readSeed(new Uint8Array(await readFile(master)), {
          network: intruder.networkId,
          verify: (s, p, sig) => verifier.verify(s, p, sig),
          now: Date.now(),
          maxAgeMs: 60_000,
        });
        assert.ok(r.ok, JSON.stringify(r));
        assert.equal(r.seed.writer, a.addresses!.nodeId);
        assert.deepEqual(r.seed.entries.map((e) => e.addrs), [[a.addresses!.gossip]]);
      });

      await t.step("seed file: B joins through the Master Seed", async () => {
        const b = start("b", { MYCELIUM_SPORES_SEED_LOCATIONS: master });
        await b.ready();
        const r = await joinedVia(b);
        assert.equal(r.source, "seed");
        assert.equal(r.target, master);
      });

      await t.step("seed URL after a tampered seed: C skips the tampered one", async () => {
        const bytes = new Uint8Array(await readFile(master));
        const text = new TextDecoder().decode(bytes).replace('"trust":0.5', '"trust":0.9');
        assert.notEqual(text, new TextDecoder().decode(bytes), "the seed lists a trust to tamper");
        const tampered = join(dir, "shared", "tampered.seed");
        await writeFile(tampered, text);
        const url = `http://${a.addresses!.admin}/v1/spores/seed`;
        const c = start("c", { MYCELIUM_SPORES_SEED_LOCATIONS: `${tampered},${url}` });
        await c.ready();
        const r = await joinedVia(c);
        assert.equal(r.source, "seed");
        assert.equal(r.target, url);
        const v = await view(c);
        assert.equal(v.seedReads[tampered]?.problem, "tampered");
        assert.equal(v.seedReads[url]?.ok, true);
        const scrape = (await c.get("/metrics")).body;
        assert.equal(
          metric(scrape, "mycelium_spores_seed_problems_total", 'problem="tampered"'),
          1,
        );
      });

      await t.step("Latent entry point after a missing seed; Rhizomorph contact", async () => {
        const missing = join(dir, "shared", "nowhere.seed");
        const d = start("d", { MYCELIUM_SPORES_SEED_LOCATIONS: missing }, [a.addresses!.gossip]);
        const e = start("e", { MYCELIUM_JOIN_RHIZOMORPHS: procs.get("b")!.addresses!.gossip });
        await Promise.all([d.ready(), e.ready()]);
        const rd = await joinedVia(d);
        assert.equal(rd.source, "latent");
        assert.equal((await view(d)).seedReads[missing]?.problem, "missing");
        const re = await joinedVia(e);
        assert.equal(re.source, "rhizomorph");
      });

      const ids = [...procs.values()].map((p) => p.addresses!.nodeId);
      await t.step("every node holds every node's signed entry", async () => {
        await until("Latent convergence", 30_000, async () => {
          for (const p of procs.values()) {
            const { entries } = await p.json<{ entries: LatentEntry[] }>("/v1/spores/latent");
            if (entries.length !== 5) return false;
          }
          return true;
        });
        const verifier = new RecordVerifier();
        const verify = (s: NodeId, p: string, sig: string) => verifier.verify(s, p, sig);
        for (const p of procs.values()) {
          const { entries } = await p.json<{ entries: LatentEntry[] }>("/v1/spores/latent");
          assert.deepEqual(entries.map((x) => x.node).sort(), [...ids].sort());
          for (const x of entries) {
            assert.ok(verifyLatentEntry(x, verify), `entry of ${x.node} verifies`);
            assert.equal(x.network, intruder.networkId);
            assert.equal(x.tier, "sclerotia");
          }
        }
      });

      await t.step("bad entries from a node of the network are discarded and counted", async () => {
        const target = procs.get("b")!;
        const { entries } = await target.json<{ entries: LatentEntry[] }>("/v1/spores/latent");
        const genuine = entries.find((x) => x.node === procs.get("d")!.addresses!.nodeId)!;
        const signer = new RecordSigner(intruder.keyPem, intruder.publicKeyRaw);
        const foreignSigner = new RecordSigner(foreign.keyPem, foreign.publicKeyRaw);
        const sign = (s: RecordSigner) => (p: string) => s.sign(p);
        const now = Date.now();
        const base = { ...genuine, node: intruder.nodeId as NodeId, hlc: { ms: now, c: 0 } };
        const forged = { ...genuine, trust: 0.99, hlc: { ms: genuine.hlc.ms + 1, c: 0 } };
        const future = signLatentEntry({ ...base, hlc: { ms: now + 60_000, c: 0 } }, sign(signer));
        const stale = signLatentEntry(
          { ...base, hlc: { ms: now - 3_600_000, c: 0 } },
          sign(signer),
        );
        const alien = signLatentEntry(
          { ...base, network: foreign.networkId, node: foreign.nodeId as NodeId },
          sign(foreignSigner),
        );
        const before = (await view(target)).discarded;
        const push = (xs: LatentEntry[]) =>
          encodeSpores({ t: "spore-push", net: intruder.networkId, ph: 0, entries: xs });
        const conn = await sendRawFrames(intruder, target.addresses!.streams, FRAME_SPORES, [
          push([forged, future, stale, alien]),
          new TextEncoder().encode("{not json"),
          new TextEncoder().encode(JSON.stringify({ t: "primary-pull", net: "x", have: 0 })),
        ]);
        await until("discards and dropped frames counted", 10_000, async () => {
          const d = (await view(target)).discarded;
          const scrape = (await target.get("/metrics")).body;
          return d.forged > before.forged && d["future-dated"] > before["future-dated"] &&
            d.stale > before.stale && d["wrong-network"] > before["wrong-network"] &&
            metric(scrape, "mycelium_spores_discarded_total", 'reason="forged"') >= 1 &&
            metric(scrape, "mycelium_spores_dropped_frames_total", 'reason="malformed"') >= 2;
        });
        conn.close("end");
        // None of them was accepted: the held entry of D is still the genuine one.
        const after = await target.json<{ entries: LatentEntry[] }>("/v1/spores/latent");
        const held = after.entries.find((x) => x.node === genuine.node)!;
        assert.notEqual(held.trust, 0.99);
        assert.ok(
          !after.entries.some((x) => x.node === intruder.nodeId || x.node === foreign.nodeId),
        );
        assert.equal((await target.get("/healthz")).status, 200);
      });

      await t.step("kill -9 and restart with no source configured: the cached spore", async () => {
        const d = procs.get("d")!;
        // The cached spore lists the others once D has written a seed as a member.
        await until(
          "D's seed lists everyone",
          10_000,
          async () => (await view(d)).seed?.entries === 5,
        );
        const incOf = async (p: NodeProcess) => {
          const m = await p.json<Array<{ node: string; state: string; incarnation: number }>>(
            "/v1/members",
          );
          const x = m.find((y) => y.node === d.addresses!.nodeId);
          return x?.state === "alive" ? x.incarnation : -1;
        };
        const before = await incOf(procs.get("a")!);
        assert.ok(before >= 0);
        d.kill("SIGKILL");
        await d.exited;
        const again = start("d", {});
        await again.ready();
        const r = await joinedVia(again);
        assert.equal(r.source, "cached");
        await until("D alive again everywhere, at a higher incarnation", 20_000, async () => {
          for (const p of procs.values()) {
            if (p !== again && (await incOf(p)) <= before) return false;
          }
          return true;
        });
      });
    } finally {
      for (const p of procs.values()) p.kill("SIGKILL");
      await Promise.all([...procs.values()].map((p) => p.exited));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
