/**
 * A stand-in for consensus in the spores simulator: it orders Primary operations (joins,
 * trust changes, exclusions, config writes) into blocks and hands out certified Primary views.
 * The real ordering is the consensus simulator's job (sim/consensus/, issue 4); here only its
 * contract matters to the spore tiers: a block commits only on a side of a partition that
 * holds a quorum of the voters (DESIGN.md section 5, Partitions and split brain), a minority
 * side commits nothing, and every committed view verifies itself (`certified`).
 *
 * Blocks are cut by the simulation (one per side per `blockMs` that has pending operations);
 * the ledger applies operations to the side's newest view, records every block, and answers
 * what a checker asks: which view was certified at a height, were two blocks ever committed
 * at one height, did a side commit without a quorum. With the `any` commit rule (a test knob)
 * two sides do commit at one height: the views then form a tree, not a chain.
 */
import type { NodeId } from "../../core/ids.ts";
import type { PrimaryView } from "../../core/spores/primary.ts";
import type { Tier } from "../../core/spores/types.ts";
import { compareStrings } from "../../core/spores/types.ts";
import { TRUST } from "../../core/consensus/trust.ts";

export type PrimaryOp =
  | { readonly kind: "join"; readonly node: NodeId; readonly tier: Tier; readonly trust: number }
  | { readonly kind: "trust"; readonly node: NodeId; readonly trust: number }
  | { readonly kind: "exclude"; readonly node: NodeId }
  /** Promotion of a Rhizomorph to Dynamic Sclerotia, or its demotion (a member's tier). */
  | { readonly kind: "tier"; readonly node: NodeId; readonly tier: Tier }
  | { readonly kind: "config"; readonly key: string; readonly value: string };

export interface PendingOp {
  readonly id: number;
  readonly op: PrimaryOp;
  /** Node index of the Sclerotium that accepted it (-1: any side that can commit). */
  readonly via: number;
  readonly submittedAt: number;
  /** Virtual ms this op has waited on a side holding a connected quorum, continuously. */
  quorumMs: number;
  committedAt: number | null;
  height: number | null;
  /** Called once when committed. */
  readonly done?: (view: PrimaryView) => void;
}

export interface Block {
  readonly height: number;
  readonly id: string;
  readonly parent: string;
  readonly at: number;
  readonly ops: number;
  /** Live voters on the committing side, and the voter set of the base view. */
  readonly sideVoters: readonly NodeId[];
  readonly voters: number;
  readonly quorum: boolean;
}

/** Voters of a view: Sclerotia members with trust >= the vote threshold, not excluded. */
export function votersOf(v: PrimaryView): NodeId[] {
  const out: NodeId[] = [];
  for (const [id, tier] of v.members) {
    if (tier !== "sclerotia" || v.excluded.has(id)) continue;
    if ((v.trust.get(id) ?? 0) >= TRUST.THRESHOLD.VOTE) out.push(id);
  }
  return out.sort(compareStrings);
}

export class PrimaryLedger {
  /** Every committed block, in commit order. */
  readonly blocks: Block[] = [];
  readonly pending: PendingOp[] = [];
  /** The first view certified at each height (the chain; forks only with the `any` rule). */
  private readonly byHeight = new Map<number, PrimaryView>();
  private readonly blockOf = new WeakMap<PrimaryView, string>();
  private readonly certified = new WeakSet<PrimaryView>();
  private readonly votersCache = new WeakMap<PrimaryView, NodeId[]>();
  /** Heights at which more than one block was committed. */
  readonly forks: number[] = [];
  private nextId = 1;
  opsCommitted = 0;
  newest: PrimaryView;

  constructor(
    readonly network: string,
    genesis: ReadonlyArray<{ id: NodeId; tier: Tier; trust: number }>,
  ) {
    const v: PrimaryView = {
      network,
      height: 1,
      certified: true,
      members: new Map(genesis.map((g) => [g.id, g.tier])),
      trust: new Map(genesis.map((g) => [g.id, g.trust])),
      excluded: new Set(),
      config: new Map(),
    };
    this.record(v, "genesis");
    this.newest = v;
  }

  private record(v: PrimaryView, id: string): void {
    this.certified.add(v);
    this.blockOf.set(v, id);
    if (!this.byHeight.has(v.height)) this.byHeight.set(v.height, v);
  }

  /** The ledger's view at `height` (the first block committed there). */
  viewAt(height: number): PrimaryView | undefined {
    return this.byHeight.get(height);
  }

  /** Whether `v` is a view this ledger certified (not a copy, not a forgery). */
  isCertified(v: PrimaryView): boolean {
    return this.certified.has(v);
  }

  /** The certified view a node's copy stands for (itself, or the view of its height). */
  truthFor(v: PrimaryView): PrimaryView | undefined {
    return this.certified.has(v) ? v : this.byHeight.get(v.height);
  }

  blockIdOf(v: PrimaryView): string | undefined {
    return this.blockOf.get(v);
  }

  voters(v: PrimaryView): NodeId[] {
    let out = this.votersCache.get(v);
    if (!out) this.votersCache.set(v, out = votersOf(v));
    return out;
  }

  /** Queues an operation; a second pending join of the same node is not queued again. */
  submit(
    op: PrimaryOp,
    via: number,
    now: number,
    done?: (view: PrimaryView) => void,
  ): PendingOp | null {
    if (
      (op.kind === "join" || op.kind === "tier") &&
      this.pending.some((p) => p.op.kind === op.kind && p.op.node === op.node)
    ) {
      return null;
    }
    const p: PendingOp = {
      id: this.nextId++,
      op,
      via,
      submittedAt: now,
      quorumMs: 0,
      committedAt: null,
      height: null,
      done,
    };
    this.pending.push(p);
    return p;
  }

  /** Drops pending operations (their Sclerotium crashed). */
  drop(ops: readonly PendingOp[]): void {
    const gone = new Set(ops);
    for (let i = this.pending.length - 1; i >= 0; i--) {
      if (gone.has(this.pending[i])) this.pending.splice(i, 1);
    }
  }

  /**
   * Commits `ops` on top of `base` (the committing side's newest view) and returns the new
   * view. The caller decided that the side may commit; `quorum` says whether it held a BFT
   * quorum of `base`'s voters (recorded for the single-writer check).
   */
  commit(
    base: PrimaryView,
    ops: readonly PendingOp[],
    now: number,
    sideVoters: readonly NodeId[],
    quorum: boolean,
  ): { view: PrimaryView; block: Block } {
    const members = new Map(base.members);
    const trust = new Map(base.trust);
    const excluded = new Set(base.excluded);
    const config = new Map(base.config);
    for (const p of ops) {
      const op = p.op;
      switch (op.kind) {
        case "join":
          if (!excluded.has(op.node) && !members.has(op.node)) {
            members.set(op.node, op.tier);
            trust.set(op.node, op.trust);
          }
          break;
        case "trust":
          if (members.has(op.node)) trust.set(op.node, op.trust);
          break;
        case "tier":
          if (members.has(op.node) && !excluded.has(op.node)) members.set(op.node, op.tier);
          break;
        case "exclude":
          excluded.add(op.node);
          trust.set(op.node, 0);
          break;
        case "config":
          config.set(op.key, op.value);
          break;
      }
    }
    const view: PrimaryView = {
      network: this.network,
      height: base.height + 1,
      certified: true,
      members,
      trust,
      excluded,
      config,
    };
    const id = `${view.height}/${this.blocks.length}`;
    if (this.byHeight.has(view.height)) this.forks.push(view.height);
    this.record(view, id);
    const block: Block = {
      height: view.height,
      id,
      parent: this.blockOf.get(base) ?? "?",
      at: now,
      ops: ops.length,
      sideVoters,
      voters: this.voters(base).length,
      quorum,
    };
    this.blocks.push(block);
    this.opsCommitted += ops.length;
    const done = new Set(ops);
    for (let i = this.pending.length - 1; i >= 0; i--) {
      if (done.has(this.pending[i])) this.pending.splice(i, 1);
    }
    if (view.height > this.newest.height) this.newest = view;
    for (const p of ops) {
      p.committedAt = now;
      p.height = view.height;
      p.done?.(view);
    }
    return { view, block };
  }
}
