/**
 * Consensus on real node processes (127.0.0.1, mutual-TLS streams, Ed25519, SQLite): the KV
 * client API answers after commit, compare-and-set conflicts, operations on the network
 * state, bad input named; and under closed-loop load a `kill -9` of a voter loses no
 * acknowledged write, and the voter restarts from its durable log and catches up.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { RecordSigner, RecordVerifier } from "./consensus.ts";
import { loadNodeIdentity } from "./pki.ts";
import { createTestNetwork, nodeEnv, NodeProcess, until } from "./testing.ts";

const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;
Deno.env.delete("MYCELIUM_BINARY");

Deno.test("record signatures are self-certifying: wrong signer, payload or bytes fail", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = await createTestNetwork(dir, "sig");
    const a = await loadNodeIdentity(join(await net.node("a"), "identity"));
    const b = await loadNodeIdentity(join(await net.node("b"), "identity"));
    const sig = new RecordSigner(a.keyPem, a.publicKeyRaw).sign("vote|prevote|1|0|nil|x");
    const v = new RecordVerifier();
    assert.equal(v.verify(a.nodeId, "vote|prevote|1|0|nil|x", sig), true);
    assert.equal(v.verify(b.nodeId, "vote|prevote|1|0|nil|x", sig), false, "another signer");
    assert.equal(v.verify(a.nodeId, "vote|prevote|1|0|nil|y", sig), false, "another payload");
    const bytes = Buffer.from(sig, "base64url");
    bytes[40] ^= 1;
    assert.equal(v.verify(a.nodeId, "vote|prevote|1|0|nil|x", bytes.toString("base64url")), false);
    assert.equal(v.verify(a.nodeId, "vote|prevote|1|0|nil|x", "short"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function startCluster(dir: string, n: number) {
  const net = await createTestNetwork(dir, "kv");
  const dataDirs = await Promise.all([...Array(n).keys()].map((i) => net.node(`v${i}`)));
  const ids = await Promise.all(
    dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
  );
  const extra = {
    MYCELIUM_CONSENSUS_VOTERS: ids.join(","),
    MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
  };
  const procs: NodeProcess[] = [];
  const first = new NodeProcess("v0", dataDirs[0], nodeEnv(dataDirs[0], [], extra), BINARY);
  procs.push(first);
  const seed = (await first.ready()).gossip;
  for (let i = 1; i < n; i++) {
    procs.push(new NodeProcess(`v${i}`, dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), BINARY));
  }
  await Promise.all(procs.map((p) => p.ready()));
  return { procs, dataDirs, ids, seed, extra };
}

const height = async (p: NodeProcess) =>
  (await p.json<{ height: number }>("/v1/consensus/status")).height;

Deno.test({
  name: `consensus (${BINARY ? "binary" : "deno run"}): KV API on 4 voters; kill -9 under load ` +
    "loses no acknowledged write",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "mycelium-kv-" });
    let procs: NodeProcess[] = [];
    try {
      const c = await startCluster(dir, 4);
      procs = c.procs;
      await until("a first commit", 20_000, async () => (await height(procs[0])) > 0);

      await t.step("put, get, compare-and-set, network operations, bad input", async () => {
        const put = await procs[1].send("POST", "/v1/kv/greeting", { value: "hello" });
        assert.equal(put.status, 200, put.body);
        assert.ok(JSON.parse(put.body).height >= 1);
        const got = await procs[2].send("GET", "/v1/kv/greeting");
        assert.equal(got.status, 200, got.body);
        assert.equal(JSON.parse(got.body).value, "hello");
        const conflict = await procs[3].send("POST", "/v1/kv/greeting", {
          expect: "nope",
          value: "x",
        });
        assert.equal(conflict.status, 409, conflict.body);
        assert.equal(JSON.parse(conflict.body).current, "hello");
        const swapped = await procs[3].send("POST", "/v1/kv/greeting", {
          expect: "hello",
          value: "hi",
        });
        assert.equal(swapped.status, 200, swapped.body);
        assert.equal(JSON.parse((await procs[0].send("GET", "/v1/kv/greeting")).body).value, "hi");
        assert.equal((await procs[0].send("GET", "/v1/kv/absent")).status, 404);
        const op = await procs[0].send("POST", "/v1/ops", {
          op: { kind: "config.set", key: "k", value: "v" },
        });
        assert.equal(op.status, 200, op.body);
        const bad = await procs[0].send("POST", "/v1/ops", { op: { kind: "config.set", key: 5 } });
        assert.equal(bad.status, 400);
        assert.match(JSON.parse(bad.body).error, /op\.key/);
        const noValue = await procs[0].send("POST", "/v1/kv/x", { nope: 1 });
        assert.equal(noValue.status, 400);
        assert.match(JSON.parse(noValue.body).error, /value/);
        const metrics = (await procs[0].get("/metrics")).body;
        assert.match(metrics, /^mycelium_consensus_height \d+/m);
        assert.match(metrics, /mycelium_consensus_commit_latency_seconds_bucket/);
        assert.match(metrics, /mycelium_trust_score\{node="[0-9a-f]{32}"\} 0\.9/);
        // A voter's signed Latent entry claims its consensus-ordered trust (genesis 0.9), so
        // the claim and the ordered table agree.
        const { entries } = await procs[0].json<
          { entries: Array<{ node: string; trust: number }> }
        >(
          "/v1/spores/latent",
        );
        const own = entries.find((e) => e.node === procs[0].addresses!.nodeId);
        assert.equal(own?.trust, 0.9, JSON.stringify(entries));
      });

      await t.step("a session's retry at another node gets the first outcome", async () => {
        const first = await procs[0].send("POST", "/v1/kv/ctr", {
          value: "a",
          session: "tester",
          seq: 1,
        });
        assert.equal(first.status, 200, first.body);
        await procs[0].send("POST", "/v1/kv/ctr", { value: "b" }); // someone else writes
        // The same seq again, at another node: answered from the session record, not re-applied.
        const retry = await procs[2].send("POST", "/v1/kv/ctr", {
          value: "a",
          session: "tester",
          seq: 1,
        });
        assert.equal(retry.status, 200, retry.body);
        assert.equal(JSON.parse((await procs[1].send("GET", "/v1/kv/ctr")).body).value, "b");
        const read = await procs[3].send("GET", "/v1/kv/ctr?session=tester&seq=2");
        assert.equal(JSON.parse(read.body).value, "b");
        const stale = await procs[1].send("POST", "/v1/kv/ctr", {
          value: "c",
          session: "tester",
          seq: 1,
        });
        assert.equal(stale.status, 504, "seq 1 is superseded by seq 2");
        assert.match(JSON.parse(stale.body).error, /already past seq 1/);
        const bad = await procs[1].send("POST", "/v1/kv/ctr", { value: "c", session: "node-x" });
        assert.equal(bad.status, 400);
        assert.match(JSON.parse(bad.body).error, /^session/);
        const badSeq = await procs[1].send("GET", "/v1/kv/ctr?session=ok&seq=0");
        assert.equal(badSeq.status, 400);
        assert.match(JSON.parse(badSeq.body).error, /^seq/);
      });

      await t.step(
        "kill -9 of a voter under closed-loop load: no acknowledged write is lost",
        async () => {
          const acked = new Map<string, number>(); // key -> highest acknowledged seq
          let stop = false;
          const live = [0, 1, 2];
          const clients = [...Array(8).keys()].map(async (k) => {
            let seq = 0;
            while (!stop) {
              const target = procs[live[k % live.length]];
              const r = await target.send("POST", `/v1/kv/client-${k}`, { value: String(seq + 1) })
                .catch(() => ({ status: 0, body: "" }));
              if (r.status === 200) acked.set(`client-${k}`, ++seq);
              else if (r.status !== 504 && r.status !== 0) {
                assert.fail(`unexpected ${r.status}: ${r.body}`);
              }
            }
          });
          await new Promise((r) => setTimeout(r, 1500));
          procs[3].kill("SIGKILL");
          await procs[3].exited;
          await new Promise((r) => setTimeout(r, 2500));
          // Restart the killed voter with its data directory (its durable log and signed votes).
          procs[3] = new NodeProcess(
            "v3",
            c.dataDirs[3],
            nodeEnv(c.dataDirs[3], [c.seed], c.extra),
            BINARY,
          );
          await procs[3].ready();
          await new Promise((r) => setTimeout(r, 1500));
          stop = true;
          await Promise.all(clients);
          assert.ok(
            acked.size === 8 && [...acked.values()].every((s) => s > 3),
            JSON.stringify([...acked]),
          );
          const top = await height(procs[0]);
          await until(
            "the restarted voter catches up",
            30_000,
            async () => (await height(procs[3])) >= top,
          );
          for (const [key, seq] of acked) {
            for (const p of procs) {
              const r = JSON.parse((await p.send("GET", `/v1/kv/${key}`)).body);
              // The last acknowledged write is there (a later unacknowledged one may be too).
              assert.ok(
                Number(r.value) >= seq,
                `${p.name}: ${key} = ${r.value}, acknowledged ${seq}`,
              );
            }
          }
        },
      );
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
