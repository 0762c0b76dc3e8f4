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
 *
 * Absence penalties (DESIGN.md section 5, Trust): a round is a committed block. Each block
 * committed with a quorum penalises the voters of its base view that are not among the
 * committing side's live voters (`Block.sideVoters`), as part of the view it produces (`penalizeAbsences`, with the points
 * taken kept in the view's `AbsenceBook`). A `partition` operation carries a partition as the
 * certified membership saw it on heal (groups and the rounds [from, to) it covered); applying
 * it refunds exactly the penalties of nodes that were on a minority side in those rounds
 * (`excusePartition`). Everything is a function of the chain, so every replica agrees.
 */
import type { NodeId } from "../../core/ids.ts";
import {
  type AbsenceBook,
  EMPTY_ABSENCE_BOOK,
  excusePartition,
  penalizeAbsences,
} from "../../core/spores/absence.ts";
import type { PartitionRecord } from "../../core/spores/split_brain.ts";
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
  | { readonly kind: "config"; readonly key: string; readonly value: string }
  /** A healed partition, as the certified membership saw it: excuses minority absences. */
  | { readonly kind: "partition"; readonly record: PartitionRecord };

/** A view the ledger certified: a Primary view and its absence book. */
export interface LedgerView extends PrimaryView {
  readonly absence: AbsenceBook;
}

export interface LedgerOptions {
  /** false: partition records are kept but excuse nothing (spores.absence-excused). */
  readonly excuseAbsences?: boolean;
  /** false: absent voters are not penalised (spores.absence-excused). */
  readonly penalizeAbsences?: boolean;
}

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
  /** Voters of the base view not among `sideVoters`, penalised in this round (none without a quorum). */
  readonly absent: readonly NodeId[];
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
  private readonly viewOfBlock = new Map<string, LedgerView>();
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
    private readonly opts: LedgerOptions = {},
  ) {
    const v: LedgerView = {
      network,
      height: 1,
      certified: true,
      members: new Map(genesis.map((g) => [g.id, g.tier])),
      trust: new Map(genesis.map((g) => [g.id, g.trust])),
      excluded: new Set(),
      config: new Map(),
      absence: EMPTY_ABSENCE_BOOK,
    };
    this.record(v, "genesis");
    this.newest = v;
  }

  private record(v: LedgerView, id: string): void {
    this.certified.add(v);
    this.blockOf.set(v, id);
    this.viewOfBlock.set(id, v);
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

  /** The certified view a block produced ("genesis": the genesis view). */
  viewOfBlockId(id: string): LedgerView | undefined {
    return this.viewOfBlock.get(id);
  }

  /** The absence book of the certified view `v` stands for (empty if none). */
  absenceOf(v: PrimaryView): AbsenceBook {
    const t = this.truthFor(v) as LedgerView | undefined;
    return t?.absence ?? EMPTY_ABSENCE_BOOK;
  }

  /** The blocks from genesis to the one that produced `v` (the chain `v` extends). */
  chainOf(v: PrimaryView): Block[] {
    const byId = new Map(this.blocks.map((b) => [b.id, b]));
    const out: Block[] = [];
    let id = this.blockOf.get(this.truthFor(v) ?? v);
    while (id !== undefined && id !== "genesis") {
      const b = byId.get(id);
      if (!b) break;
      out.push(b);
      id = b.parent;
    }
    return out.reverse();
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
    let trust = new Map(base.trust);
    const height = base.height + 1;
    // The absences of this round, from the base view's voters (before this block's ops).
    // Trust changes need a BFT quorum: a block without one (an override, a test rule)
    // penalises nobody, or a minority side could vote the other side out of the voter set.
    const baseVoters = this.voters(base);
    const present = new Set(sideVoters);
    const penalize = quorum && (this.opts.penalizeAbsences ?? true);
    const absent = penalize ? baseVoters.filter((v) => !present.has(v)) : [];
    const book = this.absenceOf(base);
    let absence = penalize
      ? penalizeAbsences({ trust, book }, height, baseVoters, sideVoters)
      : { trust, book };
    if (absence.trust !== trust) trust = new Map(absence.trust);
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
        case "partition":
          absence = excusePartition(
            { trust, book: absence.book },
            op.record,
            excluded,
            this.opts.excuseAbsences ?? true,
          );
          if (absence.trust !== trust) trust = new Map(absence.trust);
          break;
      }
    }
    const view: LedgerView = {
      network: this.network,
      height,
      certified: true,
      members,
      trust,
      excluded,
      config,
      absence: absence.book,
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
      voters: baseVoters.length,
      quorum,
      absent,
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
