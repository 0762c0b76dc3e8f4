/**
 * The namespace lab for real: namespaces, veths, a bridge, real UDP between namespaces, and
 * nftables/tc rules. Needs root with ip, nft and tc; otherwise the tests are reported as
 * skipped (ignored, with the reason in their names), never passed.
 */
import assert from "node:assert/strict";
import { cleanupStale, leftovers, NetnsLab, netnsUnavailable, run } from "./netns.ts";

const why = netnsUnavailable();
const skip = why ? ` (skipped: needs root and ip/nft/tc — ${why})` : "";

function labTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: name + skip, ignore: why !== null, sanitizeResources: false, fn });
}

const RECEIVER = `
import dgram from "node:dgram";
const [addr, ms] = Deno.args;
const s = dgram.createSocket("udp4");
let n = 0;
s.on("message", () => n++);
s.bind(9000, addr, () => console.log("ready"));
setTimeout(() => { console.log("got " + n); s.close(); }, Number(ms));
`;

/** Datagrams (of `count`) sent from node `from` that node `to` received. */
async function reach(lab: NetnsLab, from: number, to: number, count = 20): Promise<number> {
  const child = new Deno.Command(lab.commandPrefix(to)[0], {
    args: [
      ...lab.commandPrefix(to).slice(1),
      Deno.execPath(),
      "eval",
      RECEIVER,
      lab.addr(to),
      "1500",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /ready/, "the receiver did not start");
  await lab.exec(from, [
    "bash",
    "-c",
    `for i in $(seq ${count}); do echo x > /dev/udp/${lab.addr(to)}/9000; done`,
  ]);
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  await child.status;
  await child.stderr.cancel();
  return Number(/got (\d+)/.exec(text)?.[1] ?? -1);
}

async function withLab(n: number, fn: (lab: NetnsLab) => Promise<void>): Promise<void> {
  const lab = await NetnsLab.create(n);
  try {
    await fn(lab);
  } finally {
    await lab.close();
  }
}

labTest("netns lab: namespaces reach each other over UDP, and the root reaches them", async () => {
  await withLab(3, async (lab) => {
    assert.equal(await reach(lab, 0, 1), 20);
    assert.equal(await reach(lab, 2, 0), 20);
    // The runner (root namespace) reaches a node through the bridge.
    const out = await run(["ip", "-4", "-o", "addr", "show", "dev", lab.bridge]);
    assert.match(out, new RegExp(lab.hostAddr.replaceAll(".", "\\.")));
    const names = await run(["ip", "netns", "list"]);
    for (const ns of lab.namespaces) assert.match(names, new RegExp(`^${ns}\\b`, "m"));
  });
});

labTest("netns lab: a partition blocks UDP across groups, not within; removal heals", async () => {
  await withLab(4, async (lab) => {
    const p = await lab.partition([[0, 1], [2]]); // node 3 is not listed: a group of its own
    assert.equal(await reach(lab, 0, 1), 20);
    assert.equal(await reach(lab, 0, 2), 0);
    assert.equal(await reach(lab, 2, 0), 0);
    assert.equal(await reach(lab, 3, 1), 0);
    assert.equal(await reach(lab, 2, 3), 0);
    const dropped = await p.remove();
    assert.ok(dropped >= 80, `counted ${dropped} drops`);
    assert.equal(await reach(lab, 0, 2), 20);
    assert.equal(await reach(lab, 3, 1), 20);
  });
});

labTest(
  "netns lab: one-way cut blocks only one direction; loss 1 blocks; loss 0.5 thins",
  async () => {
    await withLab(3, async (lab) => {
      const cut = await lab.oneway([0], [1]);
      assert.equal(await reach(lab, 0, 1), 0);
      assert.equal(await reach(lab, 1, 0), 20);
      assert.equal(await reach(lab, 0, 2), 20);
      assert.equal(await cut.remove(), 20);
      assert.equal(await reach(lab, 0, 1), 20);

      const jam = await lab.loss([[0], [1, 2]], 1);
      assert.equal(await reach(lab, 0, 2), 0);
      assert.equal(await reach(lab, 2, 0), 0);
      assert.equal(await reach(lab, 1, 2), 20);
      await jam.remove();

      const half = await lab.loss([[0], [1]], 0.5);
      const got = await reach(lab, 0, 1, 200);
      assert.ok(got > 40 && got < 160, `${got} of 200 arrived at loss 0.5`);
      assert.equal(await half.remove(), 200 - got);

      const deg = await lab.degrade(2, 1, "out");
      assert.equal(await reach(lab, 2, 0), 0);
      assert.equal(await reach(lab, 0, 2), 20);
      await deg.remove();
      assert.equal(await reach(lab, 2, 0), 20);
    });
  },
);

labTest(
  "netns lab: bandwidth installs a tbf qdisc on the node's uplink; removal takes it away",
  async () => {
    await withLab(2, async (lab) => {
      const bw = await lab.bandwidth(1, 1_000_000, 64 * 1024);
      const shown = await lab.exec(1, ["tc", "qdisc", "show", "dev", "eth0"]);
      assert.match(shown, /qdisc tbf .*rate 1Mbit/);
      assert.doesNotMatch(await lab.exec(0, ["tc", "qdisc", "show", "dev", "eth0"]), /tbf/);
      assert.equal(await reach(lab, 1, 0), 20);
      await bw.remove();
      assert.doesNotMatch(await lab.exec(1, ["tc", "qdisc", "show", "dev", "eth0"]), /tbf/);
    });
  },
);

labTest("netns lab: close() leaves no namespace, link or nft table behind", async () => {
  const lab = await NetnsLab.create(3);
  await lab.partition([[0], [1, 2]]);
  await lab.degrade(0, 0.3);
  assert.match(await lab.exec(0, ["nft", "list", "tables"]), /inet mycelium/);
  await lab.close();
  assert.deepEqual(await leftovers(lab.prefix), []);
  assert.doesNotMatch(await run(["ip", "netns", "list"]), new RegExp(lab.prefix));
  assert.doesNotMatch(await run(["ip", "link"]), new RegExp(lab.prefix));
  assert.doesNotMatch(await run(["ip", "-4", "addr"]), new RegExp(`10\\.213\\.${lab.subnet}\\.`));
  // The tables lived in the namespaces, which are gone; the root namespace has none.
  assert.doesNotMatch(await run(["nft", "list", "tables"]), /mycelium/);
  await lab.close(); // idempotent
});

labTest("netns lab: cleanupStale() removes a lab whose owner died, and only that one", async () => {
  const mine = await NetnsLab.create(2);
  const orphan = await NetnsLab.create(2);
  try {
    // Pretend the orphan's owner process is gone (pids never reach 2^22 + 1 on Linux).
    await Deno.writeTextFile(`/run/mycelium-netns/${orphan.prefix}`, "4194305\n");
    const removed = await cleanupStale();
    assert.ok(removed.includes(`netns ${orphan.prefix}-n0`), removed.join(", "));
    assert.ok(removed.includes(`link ${orphan.bridge}`), removed.join(", "));
    assert.deepEqual(await leftovers(orphan.prefix), []);
    assert.ok(!removed.some((r) => r.includes(mine.prefix)), "a live owner's lab was removed");
    assert.equal(await reach(mine, 0, 1), 20);
    // With a prefix, that lab goes whoever owns it.
    await cleanupStale(mine.prefix);
    assert.deepEqual(await leftovers(mine.prefix), []);
  } finally {
    await mine.close().catch(() => undefined);
    await orphan.close().catch(() => undefined);
  }
});
