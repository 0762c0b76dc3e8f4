/**
 * A network-namespace lab for the real cluster: one namespace per node, joined by veth links
 * to a bridge in the root namespace, with link faults as nftables rules inside each node's
 * namespace and uplink bandwidth as a `tc tbf` qdisc. Everything is created by this module
 * (as root) through `ip`, `nft` and `tc` subprocesses, and removed by `close()`.
 *
 * Addresses: a private /24 (`10.213.X.0/24`, X picked among the subnets not in use): node i
 * is `10.213.X.(i+1)` inside its namespace, the bridge (root namespace) is `10.213.X.254`,
 * so the runner reaches every node's admin HTTP. No other address is touched.
 *
 * Names: a per-run random prefix `mycXXXXX`; namespaces `<prefix>-n<i>`, host-side veths
 * `<prefix>-v<i>` (the namespace side is `eth0`), the bridge `<prefix>-br`, and a table
 * `inet mycelium` in every node namespace. The owner's pid is written to
 * `/run/mycelium-netns/<prefix>` so `cleanupStale()` can remove labs whose owner died.
 *
 * Faults are applied where a packet arrives (the receiver's input chain; a drop in the
 * sender's output chain would fail its send() with EPERM, which no real link does); a lossy
 * rule matches `numgen random mod 10000`.
 * Only traffic between lab nodes is matched: the runner's admin requests (from the bridge
 * address) are never dropped. Added latency (this kernel has no `netem`) comes from the
 * delaying relay (relay.ts), which `steerThroughRelay` routes node-to-node traffic through.
 */

export class NetnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetnsError";
  }
}

const OWNER_DIR = "/run/mycelium-netns";
/** Relay aliases are 10.213.X.(121 + i); nodes are 10.213.X.(1 + i). */
const RELAY_ALIAS_BASE = 121;
export const RELAY_MAX_NODES = 120;
const RELAY_PORT_BASE = 20000;
const SEARCH = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** Absolute path of a tool on PATH (or the sbin directories), or null. */
export function findTool(name: string): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...SEARCH];
  for (const d of dirs) {
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

/** Why a namespace lab cannot be built here (null: it can). */
export function netnsUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  const missing = ["ip", "nft", "tc"].filter((t) => findTool(t) === null);
  if (missing.length > 0) {
    return `missing ${missing.join(", ")} (apt-get install iproute2 nftables)`;
  }
  return null;
}

const dec = new TextDecoder();

/** Runs a command; throws NetnsError naming the command and its stderr when it fails. */
export async function run(cmd: string[], stdin?: string): Promise<string> {
  const tool = cmd[0].includes("/") ? cmd[0] : findTool(cmd[0]) ?? cmd[0];
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command(tool, {
      args: cmd.slice(1),
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    out = await child.output();
  } catch (e) {
    throw new NetnsError(`\`${cmd.join(" ")}\` could not start: ${(e as Error).message}`);
  }
  if (!out.success) {
    throw new NetnsError(
      `\`${cmd.join(" ")}\` failed (exit ${out.code}): ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

async function tryRun(cmd: string[]): Promise<void> {
  try {
    await run(cmd);
  } catch { /* already gone */ }
}

/** One installed nftables rule: where it lives. */
interface NftRule {
  node: number;
  chain: "input" | "output";
  handle: number;
}

/** An applied fault; `remove()` takes it away and reports the packets it dropped. */
export interface RuleHandle {
  /** Ordered node pairs (from, to) whose traffic the rule matches. */
  readonly pairs: number;
  /** Packets dropped so far. */
  dropped(): Promise<number>;
  /** Removes the rule (idempotent); returns the packets it dropped. */
  remove(): Promise<number>;
}

export interface NetnsLabOptions {
  /** Name prefix (default: "myc" + 5 random hex digits). At most 8 characters. */
  prefix?: string;
  /** The third octet X of 10.213.X.0/24 (default: a free one, at random). */
  subnet?: number;
}

function randomHex(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return [...b].map((x) => (x % 16).toString(16)).join("");
}

/** Namespaces, veths and a bridge for `n` nodes, with fault rules between them. */
export class NetnsLab {
  readonly namespaces: string[];
  readonly bridge: string;
  private closed = false;
  private readonly rules = new Set<RuleHandle>();

  private constructor(
    readonly prefix: string,
    readonly subnet: number,
    readonly size: number,
  ) {
    this.namespaces = Array.from({ length: size }, (_, i) => `${prefix}-n${i}`);
    this.bridge = `${prefix}-br`;
  }

  /** Node i's address (inside its namespace). */
  addr(i: number): string {
    return `10.213.${this.subnet}.${i + 1}`;
  }

  /**
   * The bridge address that stands for node i when the delaying relay forwards its traffic
   * (see relay.ts); fault rules match it as well as `addr(i)`. Labs with a relay hold at
   * most `RELAY_MAX_NODES` nodes, so the two ranges never meet.
   */
  alias(i: number): string {
    return `10.213.${this.subnet}.${RELAY_ALIAS_BASE + i}`;
  }

  /** The relay's port for traffic to node j (UDP and TCP alike). */
  relayPort(j: number): number {
    return RELAY_PORT_BASE + j;
  }

  /**
   * Steers all traffic between nodes through a relay in the root namespace: adds the alias
   * addresses to the bridge, and in each node's namespace DNATs packets to another node's
   * gossip (UDP `gossipPort`) or stream (TCP `streamsPort`) port to `alias(i):relayPort(j)`.
   * The admin port and the runner's own traffic are left alone.
   */
  async steerThroughRelay(gossipPort: number, streamsPort: number): Promise<void> {
    this.check([], "steerThroughRelay");
    if (this.size > RELAY_MAX_NODES) {
      throw new NetnsError(
        `a relayed lab holds at most ${RELAY_MAX_NODES} nodes, not ${this.size}`,
      );
    }
    for (let i = 0; i < this.size; i++) {
      await run(["ip", "addr", "add", `${this.alias(i)}/32`, "dev", this.bridge]);
    }
    await Promise.all(this.namespaces.map((_, i) => {
      const rules: string[] = [];
      for (let j = 0; j < this.size; j++) {
        if (j === i) continue;
        const to = `${this.alias(i)}:${this.relayPort(j)}`;
        rules.push(`    ip daddr ${this.addr(j)} udp dport ${gossipPort} dnat ip to ${to}`);
        rules.push(`    ip daddr ${this.addr(j)} tcp dport ${streamsPort} dnat ip to ${to}`);
      }
      const table = `table ip mycelium_relay {
  chain steer {
    type nat hook output priority -100; policy accept;
${rules.join("\n")}
  }
}
`;
      return this.exec(i, ["nft", "-f", "-"], table);
    }));
  }

  /** The bridge's address in the root namespace (where the runner's requests come from). */
  get hostAddr(): string {
    return `10.213.${this.subnet}.254`;
  }

  /** `ip netns exec <ns>`: prefix a command with this to run it in node i's namespace. */
  commandPrefix(i: number): string[] {
    return [findTool("ip") ?? "ip", "netns", "exec", this.namespaces[i]];
  }

  /** Runs a command in node i's namespace; returns its stdout. */
  exec(i: number, cmd: string[], stdin?: string): Promise<string> {
    return run([...this.commandPrefix(i), ...cmd], stdin);
  }

  /** Builds the lab (root only); on failure, removes whatever it had created. */
  static async create(n: number, opts: NetnsLabOptions = {}): Promise<NetnsLab> {
    const why = netnsUnavailable();
    if (why) throw new NetnsError(`cannot build a namespace lab: ${why}`);
    if (!Number.isInteger(n) || n < 1 || n > 253) {
      throw new NetnsError(`a namespace lab holds 1..253 nodes, not ${n}`);
    }
    const prefix = opts.prefix ?? `myc${randomHex(5)}`;
    if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix)) {
      throw new NetnsError(`bad prefix "${prefix}": 1-8 lowercase letters and digits`);
    }
    // A subnet is reserved by a file created exclusively, so parallel labs never pick the
    // same one; a clash with something else on the machine moves on to another subnet.
    for (let attempt = 1;; attempt++) {
      const subnet = opts.subnet ?? await reserveSubnet();
      const lab = new NetnsLab(prefix, subnet, n);
      try {
        await lab.build();
        return lab;
      } catch (e) {
        await lab.close().catch(() => undefined);
        if (!(e instanceof SubnetClash) || opts.subnet !== undefined || attempt >= 5) throw e;
      }
    }
  }

  private async build(): Promise<void> {
    await Deno.mkdir(OWNER_DIR, { recursive: true });
    await Deno.writeTextFile(`${OWNER_DIR}/${this.prefix}`, `${Deno.pid}\n`);
    const br = this.bridge;
    await run(["ip", "link", "add", br, "type", "bridge"]);
    await run(["ip", "addr", "add", `${this.hostAddr}/24`, "dev", br]);
    // Another lab may have picked the same subnet at the same moment: give up rather than share.
    const clash = (await run(["ip", "-4", "-o", "addr", "show"])).split("\n")
      .filter((l) => l.includes(` 10.213.${this.subnet}.`) && !l.includes(` ${br} `));
    if (clash.length > 0) {
      throw new SubnetClash(`10.213.${this.subnet}.0/24 is already in use: ${clash[0].trim()}`);
    }
    await run(["ip", "link", "set", br, "up"]);
    // Input rules run after NAT (priority 200 > srcnat 100), so a reply relayed on a
    // connection this node opened is matched by the peer's own address, not the relay's.
    const table = `table inet mycelium {
  chain input { type filter hook input priority 200; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
`;
    await Promise.all(this.namespaces.map(async (ns, i) => {
      const veth = `${this.prefix}-v${i}`;
      await run(["ip", "netns", "add", ns]);
      await run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      await run(["ip", "link", "set", veth, "master", br, "up"]);
      await run(["ip", "-n", ns, "addr", "add", `${this.addr(i)}/24`, "dev", "eth0"]);
      await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
      await this.exec(i, ["nft", "-f", "-"], table);
    }));
  }

  /** Removes every rule, namespace, veth and the bridge (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rules.clear();
    // Deleting a namespace frees its veth asynchronously: delete the links first.
    await Promise.all(
      this.namespaces.map((_, i) => tryRun(["ip", "link", "del", `${this.prefix}-v${i}`])),
    );
    await Promise.all(this.namespaces.map((ns) => tryRun(["ip", "netns", "del", ns])));
    await tryRun(["ip", "link", "del", this.bridge]);
    await Deno.remove(`${OWNER_DIR}/${this.prefix}`).catch(() => undefined);
    await releaseSubnet(this.subnet);
    const left = await leftovers(this.prefix);
    if (left.length > 0) {
      throw new NetnsError(`lab ${this.prefix} left behind: ${left.join(", ")}`);
    }
  }

  private check(nodes: number[], what: string): void {
    if (this.closed) throw new NetnsError(`${what}: the lab is closed`);
    for (const i of nodes) {
      if (!Number.isInteger(i) || i < 0 || i >= this.size) {
        throw new NetnsError(`${what}: no node ${i} (the lab has ${this.size})`);
      }
    }
  }

  /**
   * Installs drop rules: for each node, packets on `chain` from/to the listed peers are
   * dropped with probability `loss`. Returns one handle for all of them.
   */
  private async drops(
    per: Array<{ node: number; chain: "input" | "output"; peers: number[] }>,
    loss: number,
  ): Promise<RuleHandle> {
    if (!(loss >= 0 && loss <= 1)) throw new NetnsError(`loss must be in [0, 1], got ${loss}`);
    const live = per.map((p) => ({
      ...p,
      peers: [...new Set(p.peers)].filter((j) => j !== p.node),
    }))
      .filter((p) => p.peers.length > 0 && loss > 0);
    const pairs = live.reduce((s, p) => s + p.peers.length, 0);
    const random = loss >= 1 ? [] : [
      "numgen",
      "random",
      "mod",
      "10000",
      "<",
      String(Math.max(1, Math.round(loss * 10000))),
    ];
    const installed: NftRule[] = [];
    const handle: RuleHandle = {
      pairs,
      dropped: () => this.count(installed),
      remove: async () => {
        if (!this.rules.has(handle)) return 0;
        this.rules.delete(handle);
        const n = await this.count(installed);
        await Promise.all(installed.map((r) =>
          this.exec(r.node, [
            "nft",
            "delete",
            "rule",
            "inet",
            "mycelium",
            r.chain,
            "handle",
            String(r.handle),
          ])
        ));
        return n;
      },
    };
    this.rules.add(handle);
    try {
      await Promise.all(live.map(async (p) => {
        const field = p.chain === "input" ? "saddr" : "daddr";
        // A peer's packets arrive from its own address, or from its alias via the relay.
        const set = `{ ${
          p.peers.flatMap((j) =>
            this.size <= RELAY_MAX_NODES ? [this.addr(j), this.alias(j)] : [this.addr(j)]
          )
            .join(", ")
        } }`;
        const out = await this.exec(p.node, [
          "nft",
          "--echo",
          "--handle",
          "add",
          "rule",
          "inet",
          "mycelium",
          p.chain,
          "ip",
          field,
          set,
          ...random,
          "counter",
          "drop",
        ]);
        const m = /# handle (\d+)/.exec(out);
        if (!m) throw new NetnsError(`nft printed no rule handle: ${out.trim()}`);
        installed.push({ node: p.node, chain: p.chain, handle: Number(m[1]) });
      }));
    } catch (e) {
      await handle.remove().catch(() => undefined);
      throw e;
    }
    return handle;
  }

  /** Sum of the packet counters of the given rules. */
  private async count(rules: NftRule[]): Promise<number> {
    if (this.closed) return 0;
    let total = 0;
    const byNode = new Map<string, Set<number>>();
    for (const r of rules) {
      const k = `${r.node}/${r.chain}`;
      if (!byNode.has(k)) byNode.set(k, new Set());
      byNode.get(k)!.add(r.handle);
    }
    await Promise.all([...byNode].map(async ([k, handles]) => {
      const [node, chain] = k.split("/");
      const json = JSON.parse(
        await this.exec(Number(node), ["nft", "-j", "list", "chain", "inet", "mycelium", chain]),
      ) as { nftables: Array<{ rule?: { handle: number; expr: Array<Record<string, unknown>> } }> };
      for (const item of json.nftables) {
        if (!item.rule || !handles.has(item.rule.handle)) continue;
        for (const e of item.rule.expr) {
          const c = e.counter as { packets: number } | undefined;
          if (c) total += c.packets;
        }
      }
    }));
    return total;
  }

  /**
   * Drops everything between nodes of different groups, both ways. Nodes not listed form
   * one more group together (as in the simulator).
   */
  partition(groups: number[][]): Promise<RuleHandle> {
    this.check(groups.flat(), "partition");
    const groupOf = new Array<number>(this.size).fill(-1);
    groups.forEach((g, gi) => g.forEach((i) => groupOf[i] = gi));
    const all = [...Array(this.size).keys()];
    return this.drops(
      all.map((i) => ({
        node: i,
        chain: "input",
        peers: all.filter((j) => groupOf[j] !== groupOf[i]),
      })),
      1,
    );
  }

  /** Drops packets from `from` to `to` with probability `loss` (the other way is untouched). */
  oneway(from: number[], to: number[], loss = 1): Promise<RuleHandle> {
    this.check([...from, ...to], "oneway");
    return this.drops(to.map((i) => ({ node: i, chain: "input", peers: from })), loss);
  }

  /** Drops packets between the two sides (either way) with probability `p` (jam, network loss). */
  loss(between: [number[], number[]], p: number): Promise<RuleHandle> {
    const [a, b] = between;
    this.check([...a, ...b], "loss");
    const inA = new Set(a), inB = new Set(b);
    const per = [...Array(this.size).keys()].map((i) => ({
      node: i,
      chain: "input" as const,
      peers: [...(inB.has(i) ? a : []), ...(inA.has(i) ? b : [])],
    }));
    return this.drops(per, p);
  }

  /** Drops a node's own traffic (to and/or from the other nodes) with probability `loss`. */
  degrade(
    node: number,
    loss: number,
    direction: "in" | "out" | "both" = "both",
  ): Promise<RuleHandle> {
    this.check([node], "degrade");
    const others = [...Array(this.size).keys()].filter((j) => j !== node);
    // Outbound loss is applied where the packets arrive: a drop in the sender's own output
    // chain would fail its send() with EPERM instead of losing the datagram silently.
    const per: Array<{ node: number; chain: "input" | "output"; peers: number[] }> = [];
    if (direction !== "out") per.push({ node, chain: "input", peers: others });
    if (direction !== "in") {
      per.push(...others.map((j) => ({ node: j, chain: "input" as const, peers: [node] })));
    }
    return this.drops(per, loss);
  }

  /**
   * Limits node i's uplink to `bitsPerSec` with a token bucket (`tc qdisc ... tbf`) holding
   * at most `queueBytes` waiting; the handle's count is the qdisc's dropped packets.
   */
  async bandwidth(node: number, bitsPerSec: number, queueBytes: number): Promise<RuleHandle> {
    this.check([node], "bandwidth");
    if (!(bitsPerSec >= 8)) throw new NetnsError(`bandwidth must be >= 8 bit/s, got ${bitsPerSec}`);
    // A bucket of 10 ms worth of bytes, never below one full frame.
    const burst = Math.max(1600, Math.ceil(bitsPerSec / 8 / 100));
    const limit = Math.max(burst, Math.round(queueBytes));
    await this.exec(node, [
      "tc",
      "qdisc",
      "replace",
      "dev",
      "eth0",
      "root",
      "tbf",
      "rate",
      `${Math.round(bitsPerSec)}bit`,
      "burst",
      String(burst),
      "limit",
      String(limit),
    ]);
    const dropped = async () => {
      if (this.closed) return 0;
      const s = await this.exec(node, ["tc", "-s", "qdisc", "show", "dev", "eth0"]);
      return Number(/qdisc tbf[\s\S]*?dropped (\d+)/.exec(s)?.[1] ?? 0);
    };
    const handle: RuleHandle = {
      pairs: this.size - 1,
      dropped,
      remove: async () => {
        if (!this.rules.has(handle)) return 0;
        this.rules.delete(handle);
        const n = await dropped();
        await this.exec(node, ["tc", "qdisc", "del", "dev", "eth0", "root"]);
        return n;
      },
    };
    this.rules.add(handle);
    return handle;
  }
}

/** Third octets already used by some address or route in 10.213.0.0/16. */
async function usedSubnets(): Promise<Set<number>> {
  const text = (await run(["ip", "-4", "-o", "addr", "show"])) +
    (await run(["ip", "-4", "route", "show"]));
  const used = new Set<number>();
  for (const m of text.matchAll(/\b10\.213\.(\d+)\./g)) used.add(Number(m[1]));
  if (/\b10\.213\.0\.0\/16\b|\b10\.0\.0\.0\/8\b/.test(text)) {
    throw new NetnsError("10.213.0.0/16 is routed on this machine; refusing to add a lab subnet");
  }
  return used;
}

class SubnetClash extends NetnsError {}

const subnetFile = (subnet: number) => `${OWNER_DIR}/subnet-${subnet}`;

/**
 * Picks an unused 10.213.X.0/24 and reserves it with an exclusively created owner file
 * (holding this process's pid); a reservation whose owner process is gone is taken over.
 */
async function reserveSubnet(): Promise<number> {
  await Deno.mkdir(OWNER_DIR, { recursive: true });
  const used = await usedSubnets();
  const free = [...Array(253).keys()].map((x) => x + 1).filter((x) => !used.has(x));
  const start = crypto.getRandomValues(new Uint32Array(1))[0];
  for (let k = 0; k < free.length; k++) {
    const subnet = free[(start + k) % free.length];
    try {
      await Deno.writeTextFile(subnetFile(subnet), `${Deno.pid}\n`, { createNew: true });
      return subnet;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const owner = Number((await Deno.readTextFile(subnetFile(subnet)).catch(() => "")).trim());
      if (owner > 0 && !pidAlive(owner)) await Deno.remove(subnetFile(subnet)).catch(() => {});
    }
  }
  throw new NetnsError("no free 10.213.X.0/24 subnet");
}

async function releaseSubnet(subnet: number): Promise<void> {
  const owner = (await Deno.readTextFile(subnetFile(subnet)).catch(() => "")).trim();
  if (owner === String(Deno.pid)) await Deno.remove(subnetFile(subnet)).catch(() => {});
}

/** Namespaces and links of a lab still present. */
export async function leftovers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  const names = (await run(["ip", "netns", "list"])).split("\n").map((l) => l.split(" ")[0]);
  out.push(...names.filter((n) => n.startsWith(`${prefix}-`)).map((n) => `netns ${n}`));
  const links = (await run(["ip", "-o", "link", "show"])).split("\n")
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((n): n is string => !!n);
  out.push(...links.filter((n) => n.startsWith(`${prefix}-`)).map((n) => `link ${n}`));
  return out;
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes leftovers of earlier labs: with a prefix, that lab's namespaces and links;
 * without, every lab (`myc` + 5 hex digits) whose owner process is gone. Returns what it removed.
 */
export async function cleanupStale(prefix?: string): Promise<string[]> {
  let prefixes: string[];
  if (prefix !== undefined) prefixes = [prefix];
  else {
    const names = (await run(["ip", "netns", "list"])) + (await run(["ip", "-o", "link", "show"]));
    const found = new Set([...names.matchAll(/\b(myc[0-9a-f]{5})-(?:n|v|br)/g)].map((m) => m[1]));
    prefixes = [...found].filter((p) => {
      try {
        return !pidAlive(Number(Deno.readTextFileSync(`${OWNER_DIR}/${p}`).trim()));
      } catch {
        return true; // no owner file: nobody owns it
      }
    });
  }
  const removed: string[] = [];
  for (const p of prefixes) {
    const left = await leftovers(p);
    for (const item of left.filter((l) => l.startsWith("link "))) {
      await tryRun(["ip", "link", "del", item.slice(5)]);
    }
    for (const item of left.filter((l) => l.startsWith("netns "))) {
      await tryRun(["ip", "netns", "del", item.slice(6)]);
    }
    await Deno.remove(`${OWNER_DIR}/${p}`).catch(() => undefined);
    removed.push(...left);
  }
  if (prefix === undefined) {
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(OWNER_DIR)) entries.push(e);
    } catch { /* no owner directory yet */ }
    for (const e of entries) {
      if (!e.name.startsWith("subnet-")) continue;
      const owner = Number(
        (await Deno.readTextFile(`${OWNER_DIR}/${e.name}`).catch(() => "")).trim(),
      );
      if (!pidAlive(owner)) await Deno.remove(`${OWNER_DIR}/${e.name}`).catch(() => {});
    }
  }
  return removed;
}
