/** Resolves node selectors (see scenario.ts) to node indices. */
import { ConfigError } from "../core/errors.ts";
import type { Rng } from "./rng.ts";
import type { Selector, Tier } from "./scenario.ts";

export interface NodeInfo {
  readonly name: string;
  readonly group: string;
  readonly indexInGroup: number;
  readonly tier: Tier;
  readonly region: string;
}

const RANGE_RE = /^([A-Za-z][\w.-]*)\[(\d+)\.\.(\d+)\]$/;

/**
 * Checks that every atom names something that exists, before the run starts, so a typo
 * fails with the field's path instead of silently matching nothing.
 */
export function validateSelector(sel: Selector, nodes: readonly NodeInfo[], path: string): void {
  const atoms = Array.isArray(sel) ? sel : [sel];
  const groups = new Map<string, number>();
  const names = new Set<string>();
  const regions = new Set<string>();
  for (const n of nodes) {
    groups.set(n.group, (groups.get(n.group) ?? 0) + 1);
    names.add(n.name);
    regions.add(n.region);
  }
  atoms.forEach((a, i) => {
    const p = Array.isArray(sel) ? `${path}[${i}]` : path;
    if (a.endsWith("%") && Number(a.slice(0, -1)) > 100) {
      throw new ConfigError(`${a} is more than 100 %`, p);
    }
    if (a === "all" || a.endsWith("%") || a.startsWith("random:") || a.startsWith("tier:")) return;
    if (a.startsWith("region:")) {
      if (!regions.has(a.slice(7))) {
        throw new ConfigError(
          `no node is in region "${a.slice(7)}" (known: ${[...regions].join(", ")})`,
          p,
        );
      }
      return;
    }
    const m = RANGE_RE.exec(a);
    if (m) {
      const size = groups.get(m[1]);
      if (size === undefined) throw new ConfigError(`no node group "${m[1]}"`, p);
      const lo = Number(m[2]), hi = Number(m[3]);
      if (lo > hi || hi >= size) {
        throw new ConfigError(`range ${lo}..${hi} is outside group "${m[1]}" (0..${size - 1})`, p);
      }
      return;
    }
    if (!groups.has(a) && !names.has(a)) {
      throw new ConfigError(`"${a}" is neither a node group nor a node name`, p);
    }
  });
}

/**
 * Node indices matched by the selector. Random atoms (`P%`, `random:K`) draw from `rng`
 * among `candidates` (e.g. the nodes up when a fault fires); the result is sorted.
 */
export function resolveSelector(
  sel: Selector,
  nodes: readonly NodeInfo[],
  rng: Rng,
  candidates: (i: number) => boolean = () => true,
): number[] {
  const atoms = Array.isArray(sel) ? sel : [sel];
  const out = new Set<number>();
  for (const a of atoms) {
    if (a.endsWith("%") || a.startsWith("random:")) {
      const pool: number[] = [];
      for (let i = 0; i < nodes.length; i++) if (candidates(i)) pool.push(i);
      const k = a.endsWith("%")
        ? Math.round((Number(a.slice(0, -1)) / 100) * pool.length)
        : Math.min(pool.length, Number(a.slice(7)));
      for (const i of rng.sample(pool, k)) out.add(i);
      continue;
    }
    const m = RANGE_RE.exec(a);
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      let hit: boolean;
      if (a === "all") hit = true;
      else if (a.startsWith("region:")) hit = n.region === a.slice(7);
      else if (a.startsWith("tier:")) hit = n.tier === a.slice(5);
      else if (m) {
        hit = n.group === m[1] && n.indexInGroup >= Number(m[2]) && n.indexInGroup <= Number(m[3]);
      } else hit = n.group === a || n.name === a;
      if (hit) out.add(i);
    }
  }
  return [...out].sort((x, y) => x - y);
}
