/**
 * Where each VM of a RAM scenario lives at the start: `vms[]` entries expand to VMs (name-0,
 * name-1, ... when count > 1), primaries go round-robin over the `primaries` nodes (by the
 * VM's position among all VMs, so single-VM entries spread out too), and each VM's backups
 * are the first `backups` `backupsFrom` nodes after its primary in node order, wrapping
 * around. Deterministic and simple: no region preference (list the nodes you want in
 * `backupsFrom` to force a placement).
 */
import { ConfigError } from "../../core/errors.ts";
import { PAGE_SIZE } from "../../core/ram/params.ts";
import type { Rng } from "../rng.ts";
import { type RamScenario, ramVmNames } from "../scenario.ts";
import { type NodeInfo, resolveSelector } from "../selectors.ts";

export interface VmPlacement {
  readonly name: string;
  /** Index of its entry in `ram.vms`. */
  readonly spec: number;
  readonly pageCount: number;
  /** Node indices. */
  readonly primary: number;
  readonly backups: readonly number[];
}

export function pagesFor(memoryMiB: number): number {
  return Math.max(1, Math.round((memoryMiB * 1024 * 1024) / PAGE_SIZE));
}

/** The first `count` of `candidates` after `primary` in cyclic node order (primary excluded). */
export function backupsAfter(
  primary: number,
  candidates: readonly number[],
  nodeCount: number,
  count: number,
): number[] {
  const dist = (c: number) => (c - primary + nodeCount) % nodeCount;
  return candidates.filter((c) => c !== primary).sort((a, b) => dist(a) - dist(b)).slice(0, count);
}

export function placeVms(ram: RamScenario, nodes: readonly NodeInfo[], rng: Rng): VmPlacement[] {
  const out: VmPlacement[] = [];
  ram.vms.forEach((spec, i) => {
    const path = `ram.vms[${i}]`;
    const prim = resolveSelector(spec.primaries, nodes, rng.derive(`primaries/${i}`));
    if (prim.length === 0) throw new ConfigError("selects no node", `${path}.primaries`);
    const from = resolveSelector(spec.backupsFrom, nodes, rng.derive(`backups/${i}`));
    const want = spec.backups ?? ram.config.backupNodeCount;
    const pageCount = pagesFor(spec.memoryMiB);
    for (const name of ramVmNames(spec)) {
      const primary = prim[out.length % prim.length];
      const backups = backupsAfter(primary, from, nodes.length, want);
      if (backups.length < want) {
        throw new ConfigError(
          `${name} needs ${want} backups but backupsFrom offers ${backups.length} node(s) ` +
            `other than its primary ${nodes[primary].name}`,
          `${path}.backups`,
        );
      }
      out.push({ name, spec: i, pageCount, primary, backups });
    }
  });
  return out;
}
