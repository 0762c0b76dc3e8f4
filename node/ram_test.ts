/**
 * Distributed RAM on real node processes (127.0.0.1, mutual-TLS streams): a 32 MiB VM on A
 * with backups B and C and a synthetic guest; epochs replicate and a backup's image equals
 * the primary's digest of the same epoch; malformed RAM frames are dropped and counted;
 * API input errors name the field; after `kill -9` of A a backup is promoted with exactly
 * the image A reported for that epoch, the other backup converges to the new primary, and a
 * planned migration then hands the VM over to it.
 * Runs against the built binary when MYCELIUM_BINARY is set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadNodeIdentity } from "./pki.ts";
import { FRAME_RAM } from "./ram.ts";
import { encodeRam } from "./ram_codec.ts";
import { createTestNetwork, nodeEnv, NodeProcess, sendRawFrames, until } from "./testing.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";

const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;
Deno.env.delete("MYCELIUM_BINARY");

interface Digest {
  term: number;
  epoch: number;
  sha256: string;
}
interface VmStatus {
  role: string;
  term: number;
  primary: string | null;
  epoch: number;
  lastAppliedEpoch: number;
  appliedTerm: number;
  promotion: {
    term: number;
    baseTerm: number;
    epoch: number;
    digest: string | null;
    failoverMs: number | null;
  } | null;
  digest?: Digest | null;
}
interface EpochsView {
  epochs: Array<{ term: number; epoch: number; digest: string | null }>;
}

const VM = "vm1";
const key = (term: number, epoch: number) => `${term}/${epoch}`;

const status = (p: NodeProcess, digest = false) =>
  p.json<VmStatus>(`/v1/ram/vms/${VM}${digest ? "?digest=1" : ""}`);

/** Adds the digests of `p`'s epoch log to `into`. */
async function collectEpochs(p: NodeProcess, into: Map<string, string>): Promise<void> {
  const view = await p.json<EpochsView>(`/v1/ram/vms/${VM}/epochs`);
  for (const e of view.epochs) if (e.digest) into.set(key(e.term, e.epoch), e.digest);
}

/** Digests a node logged (ram_epoch_digest lines, written before the epoch is sent). */
function loggedDigests(p: NodeProcess, into: Map<string, string>): void {
  for (const line of p.logs) {
    if (!line.includes('"ram_epoch_digest"')) continue;
    const o = JSON.parse(line);
    into.set(key(o.term, o.epoch), o.digest);
  }
}

Deno.test({
  name: `ram (${BINARY ? "binary" : "deno run"}): replication on 3 nodes; kill -9 of the ` +
    "primary promotes a backup holding exactly the primary's epoch",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "mycelium-ram-" });
    const procs: NodeProcess[] = [];
    let polling = false;
    let poller: Promise<void> = Promise.resolve();
    try {
      const net = await createTestNetwork(dir, "ram");
      const dataDirs = await Promise.all(["a", "b", "c"].map((n) => net.node(n)));
      const ids = await Promise.all(
        dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
      );
      const intruder = await loadNodeIdentity(join(await net.node("x"), "identity"));
      const extra = {
        MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
        // 50 ms epochs: the primary digests every cut (32 MiB, ~30 ms) while it is polled.
        MYCELIUM_RAM_REPLICATION_PROFILE: "low",
        MYCELIUM_RAM_REPLICATION_PROFILES_LOW_INTERVAL_MS: "50",
      };
      procs.push(new NodeProcess("a", dataDirs[0], nodeEnv(dataDirs[0], [], extra), BINARY));
      const seed = (await procs[0].ready()).gossip;
      for (const [i, name] of [[1, "b"], [2, "c"]] as const) {
        procs.push(
          new NodeProcess(name, dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), BINARY),
        );
      }
      await Promise.all(procs.map((p) => p.ready()));
      await until("every node sees the other two alive", 20_000, async () => {
        for (const p of procs) {
          const m = await p.json<Array<{ state: string }>>("/v1/members");
          if (m.filter((x) => x.state === "alive").length < 2) return false; // the others
        }
        return true;
      });
      const [a, b, c] = procs;
      const spec = {
        id: VM,
        memoryMiB: 32,
        primary: ids[0],
        backups: [ids[1], ids[2]],
        dirtyPagesPerSec: 2000,
        workload: "uniform",
      };

      await t.step("API input errors name the field", async () => {
        const bad = async (body: unknown, field: RegExp, code = 400) => {
          const r = await a.send("POST", "/v1/ram/vms", body);
          assert.equal(r.status, code, r.body);
          assert.match(JSON.parse(r.body).error, field);
        };
        await bad({ ...spec, role: "primary", memoryMiB: 0 }, /^memoryMiB: /);
        await bad({ ...spec, memoryMiB: 32 }, /^role: /);
        await bad({ ...spec, role: "primary", primary: "nope" }, /^primary: /);
        await bad({ ...spec, role: "primary", backups: [ids[1], 7] }, /^backups\[1\]: /);
        await bad(
          { ...spec, role: "primary", workload: { kind: "uniform", hotPages: 3 } },
          /^workload\.hotPages: /,
        );
        await bad({ ...spec, role: "primary", colour: "red" }, /^colour: unknown field/);
        await bad(
          { ...spec, role: "primary", primary: ids[1], backups: [ids[0], ids[2]] },
          /^primary: must be this node/,
        );
        await bad("{", /^\(root\): expected a JSON object/);
        const missing = await a.get(`/v1/ram/vms/nope`);
        assert.equal(missing.status, 404);
      });

      await t.step("a VM on A with backups B and C replicates epochs", async () => {
        for (const [p, role] of [[b, "backup"], [c, "backup"], [a, "primary"]] as const) {
          const r = await p.send("POST", "/v1/ram/vms", { ...spec, role });
          assert.equal(r.status, 201, `${p.name}: ${r.body}`);
        }
        const dup = await a.send("POST", "/v1/ram/vms", { ...spec, role: "primary" });
        assert.equal(dup.status, 409, dup.body);
        const badMigrate = await a.send("POST", `/v1/ram/vms/${VM}/migrate`, { to: "x" });
        assert.equal(badMigrate.status, 400);
        assert.match(JSON.parse(badMigrate.body).error, /^to: /);
        await until("B and C apply epochs", 20_000, async () => {
          const [sb, sc] = await Promise.all([status(b), status(c)]);
          return sb.lastAppliedEpoch >= 40 && sc.lastAppliedEpoch >= 40; // 2 s of guest writes
        });
        const list = await a.json<Array<{ vmId: string; role: string }>>("/v1/ram/vms");
        assert.deepEqual(list.map((v) => [v.vmId, v.role]), [[VM, "primary"]]);
      });

      // A's digests of its cut epochs, from its epoch log (polled throughout) and its log.
      const reported = new Map<string, string>();
      polling = true;
      poller = (async () => {
        while (polling) {
          await collectEpochs(a, reported).catch(() => {});
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      await t.step("a backup's image equals the primary's digest of the same epoch", async () => {
        let last: Digest | null | undefined;
        await until("B's image matches an epoch digest of A", 20_000, async () => {
          last = (await status(b, true)).digest;
          return !!last && reported.has(key(last.term, last.epoch));
        });
        assert.equal(last!.sha256, reported.get(key(last!.term, last!.epoch)));
        const s = await status(a);
        assert.equal(s.role, "primary");
      });

      await t.step("malformed RAM frames are dropped and counted, the node goes on", async () => {
        const streams = (await b.json<{ addresses: { streams: string } }>("/status")).addresses
          .streams;
        const page = new Uint8Array(PAGE_SIZE);
        const outOfRange = encodeRam({
          t: "ram-epoch",
          vmId: VM,
          term: 1,
          epoch: 1,
          baseTerm: 1,
          baseEpoch: 0,
          resync: false,
          chunk: 0,
          chunks: 1,
          pages: [32 * 256 + 5], // past the 32 MiB image
          contents: [page],
        });
        const conn = await sendRawFrames(intruder, streams, FRAME_RAM, [
          new TextEncoder().encode("\x01\x00\x05hello"),
          outOfRange,
        ]);
        const count = (m: string, reason: string) =>
          Number(
            new RegExp(`^mycelium_ram_dropped_frames_total\\{reason="${reason}"\\} (\\d+)`, "m")
              .exec(m)?.[1] ?? 0,
          );
        await until("B counts both drops", 10_000, async () => {
          const m = (await b.get("/metrics")).body;
          return count(m, "decode") === 1 && count(m, "page-range") === 1;
        });
        conn.close("done");
        assert.ok(b.logs.some((l) => l.includes('"ram_frame_dropped"') && l.includes("decode")));
        const before = (await status(b)).lastAppliedEpoch;
        await until("B keeps applying", 10_000, async () => {
          return (await status(b)).lastAppliedEpoch > before;
        });
      });

      let newPrimary: NodeProcess | undefined, follower: NodeProcess | undefined;
      await t.step("kill -9 of A: a backup takes over with A's epoch, byte for byte", async () => {
        a.kill("SIGKILL");
        await a.exited;
        polling = false;
        await poller;
        let promoted: NodeProcess | undefined;
        await until("a backup is promoted", 20_000, async () => {
          for (const p of [b, c]) if ((await status(p)).role === "primary") promoted = p;
          return promoted !== undefined;
        });
        const p = newPrimary = promoted!;
        const other = follower = p === b ? c : b;
        const s = await status(p);
        const promo = s.promotion!;
        assert.ok(promo, "promotion recorded");
        assert.ok(promo.term > 1);
        assert.ok(promo.digest, "digest at promotion");
        // Every digest A took is in its log (written before the epoch was sent); its last lines
        // may still be in the pipe.
        const k = key(promo.baseTerm, promo.epoch);
        await until(`A's digest of epoch ${k}`, 10_000, () => {
          loggedDigests(a, reported);
          return Promise.resolve(reported.has(k));
        }).catch(() => assert.fail(`A reported no digest for epoch ${k}`));
        const theirs = reported.get(k);
        assert.equal(promo.digest, theirs, "the promoted image equals A's epoch");
        console.log(
          `  promoted ${p.name} at term ${promo.term} from epoch ` +
            `${key(promo.baseTerm, promo.epoch)}; failover ${promo.failoverMs?.toFixed(0)} ms`,
        );

        // The other backup follows the new primary and converges to its state.
        const mine = new Map<string, string>();
        let od: Digest | null | undefined;
        await until(`${other.name} converges to ${p.name}`, 30_000, async () => {
          await collectEpochs(p, mine);
          od = (await status(other, true)).digest;
          return !!od && od.term === promo.term && mine.has(key(od.term, od.epoch));
        });
        assert.equal(od!.sha256, mine.get(key(od!.term, od!.epoch)));
        assert.equal(
          (await status(other)).primary,
          (await p.json<{
            identity: { nodeId: string };
          }>("/status")).identity.nodeId,
        );

        // Commits wait for A's link to go silent for a lease (it is dead, but was a replica).
        const names = [
          `mycelium_ram_buffer_level{vm="${VM}"}`,
          `mycelium_ram_intensity{vm="${VM}"}`,
          `mycelium_ram_replication_lag_ms{vm="${VM}"}`,
          `mycelium_ram_epoch_commit_ms_bucket{`,
          `mycelium_replications_total{vm="${VM}"}`,
          `mycelium_ram_bytes_replicated_total{vm="${VM}"}`,
          `mycelium_ram_pauses_total{vm="${VM}"}`,
          `mycelium_ram_paused_ms_total{vm="${VM}"}`,
          `mycelium_ram_failover_ms_bucket{`,
          `mycelium_ram_promotions_total{reason="election",vm="${VM}"}`,
        ];
        let m = "";
        await until(`${p.name} exports the RAM metrics`, 10_000, async () => {
          m = (await p.get("/metrics")).body;
          return names.every((n) => m.includes(n));
        }).catch(() => {
          assert.fail(`${p.name} /metrics lacks ${names.filter((n) => !m.includes(n))}`);
        });
      });

      await t.step("a planned migration hands the VM over to the other backup", async () => {
        const from = newPrimary!, to = follower!;
        const toId = ids[procs.indexOf(to)];
        const r = await from.send("POST", `/v1/ram/vms/${VM}/migrate`, { to: toId });
        assert.equal(r.status, 202, r.body);
        type Migrated = VmStatus & { lastMigration: { outcome: string } | null };
        let sf: Migrated | undefined;
        await until(`${to.name} runs the VM`, 30_000, async () => {
          const st = await status(to);
          sf = await from.json<Migrated>(`/v1/ram/vms/${VM}`);
          return st.role === "primary" && sf.role === "backup" && sf.lastMigration !== null;
        });
        assert.equal(sf!.lastMigration!.outcome, "completed", JSON.stringify(sf!.lastMigration));
      });
    } finally {
      polling = false;
      await poller;
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
