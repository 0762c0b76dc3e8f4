/**
 * Watches every node's membership view against the simulator's ground truth (who is up),
 * with per-target counters so 10,000 views cost O(1) per change:
 * formation time, detection latency of each crash (until *every* live node has declared it
 * dead), dissemination time of each join, false positives and suspicions.
 */
import { MemberState } from "../core/membership/messages.ts";
import { UNKNOWN } from "../core/membership/members.ts";

export interface DetectionRecord {
  target: number;
  crashAt: number;
  /**
   * Time from which no live node listed it alive or suspect any more (every node that knew
   * it had declared it dead; a node that never knew it does not count against this).
   */
  allDeclaredAt: number | null;
  /** The node came back before every live node noticed. */
  restartedBefore: boolean;
}

export interface JoinRecord {
  node: number;
  joinAt: number;
  allAliveAt: number | null;
}

/** A problem an online check found: stops the run. */
export interface Violation {
  check: string;
  detail: string;
}

export type ViewOf = (observer: number, target: number) => number;

export class MembershipObserver {
  readonly n: number;
  readonly up: Uint8Array;
  readonly everStarted: Uint8Array;
  upCount = 0;
  /** Live observers that see the target alive / alive-or-suspect / dead-or-left. */
  readonly aliveBy: Int32Array;
  readonly liveBy: Int32Array;
  readonly deadBy: Int32Array;
  suspectViews = 0;
  deadViews = 0;

  readonly detections: DetectionRecord[] = [];
  private readonly pendingDetection = new Map<number, DetectionRecord>();
  readonly joins: JoinRecord[] = [];
  private readonly pendingJoin = new Map<number, JoinRecord>();

  formationAt: number | null = null;
  private formationOpen = true;
  /** aliveHist[v] = live targets seen alive by exactly v live observers. */
  private readonly aliveHist: Int32Array;
  private initialPending: number;

  falsePositives = 0;
  falseSuspicions = 0;
  partitionDeclarations = 0;
  readonly falsePositiveSamples: string[] = [];

  /** Online check: incarnations never go down in a view. */
  checkIncarnations = false;
  violation: Violation | null = null;

  constructor(
    n: number,
    initialCount: number,
    private readonly now: () => number,
    private readonly partitioned: (a: number, b: number) => boolean,
    private readonly nameOf: (i: number) => string,
  ) {
    this.n = n;
    this.up = new Uint8Array(n);
    this.everStarted = new Uint8Array(n);
    this.aliveBy = new Int32Array(n);
    this.liveBy = new Int32Array(n);
    this.deadBy = new Int32Array(n);
    this.aliveHist = new Int32Array(n + 1);
    this.initialPending = initialCount;
  }

  // ---- ground truth ----

  nodeUp(i: number, isJoin: boolean): void {
    const first = !this.everStarted[i];
    this.up[i] = 1;
    this.everStarted[i] = 1;
    this.upCount++;
    this.aliveHist[this.aliveBy[i]]++;
    if (first && !isJoin) this.initialPending--;
    const crash = this.pendingDetection.get(i);
    if (crash) {
      crash.restartedBefore = true;
      this.pendingDetection.delete(i);
    }
    if (isJoin && first) {
      const rec: JoinRecord = { node: i, joinAt: this.now(), allAliveAt: null };
      this.joins.push(rec);
      this.pendingJoin.set(i, rec);
    }
    this.settle();
  }

  /**
   * The node stopped (crash or leave). Its view no longer counts: `viewOf` reads the view
   * it had so the counters can be taken back.
   */
  nodeDown(i: number, crashed: boolean, viewOf: ViewOf): void {
    if (!this.up[i]) return;
    this.aliveHist[this.aliveBy[i]]--;
    this.up[i] = 0;
    this.upCount--;
    for (let t = 0; t < this.n; t++) {
      if (t !== i) this.uncount(t, viewOf(i, t));
    }
    this.pendingJoin.delete(i);
    if (crashed) {
      const rec: DetectionRecord = {
        target: i,
        crashAt: this.now(),
        allDeclaredAt: null,
        restartedBefore: false,
      };
      this.detections.push(rec);
      this.pendingDetection.set(i, rec);
    }
    this.settle();
  }

  /** Ends formation tracking (the first fault fired: formation is measured before). */
  closeFormation(): void {
    this.formationOpen = false;
  }

  // ---- views ----

  /**
   * Observer `o`'s view of `t` changed. `origin` is whose judgement it was: a dead item
   * relayed across a healed partition counts against the partition, not as a false positive.
   */
  onChange(
    o: number,
    t: number,
    from: number,
    to: number,
    oldInc: number,
    newInc: number,
    origin = o,
  ): void {
    if (this.checkIncarnations && newInc < oldInc && from !== UNKNOWN && !this.violation) {
      this.violation = {
        check: "membership.incarnation-monotonic",
        detail: `${this.nameOf(o)} lowered ${this.nameOf(t)}'s incarnation ${oldInc} -> ${newInc}`,
      };
    }
    if (!this.up[o] || from === to) return;
    this.uncount(t, from);
    this.count(t, to);
    if (this.up[t]) {
      if (to === MemberState.Dead) {
        if (this.partitioned(origin, t)) this.partitionDeclarations++;
        else {
          this.falsePositives++;
          if (this.falsePositiveSamples.length < 5) {
            this.falsePositiveSamples.push(
              `${this.nameOf(o)} declared live ${this.nameOf(t)} dead at ${
                this.now().toFixed(0)
              } ms`,
            );
          }
        }
      } else if (to === MemberState.Suspect && !this.partitioned(origin, t)) this.falseSuspicions++;
    }
    this.settleTarget(t);
  }

  /** Observer `o` loaded these members as alive from a snapshot (bulk onChange). */
  snapshotAlive(o: number, members: readonly number[]): void {
    if (!this.up[o]) return;
    for (let i = 0; i < members.length; i++) {
      const t = members[i];
      this.liveBy[t]++;
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]--;
      this.aliveBy[t]++;
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]++;
    }
    this.settle();
  }

  private count(t: number, s: number): void {
    if (s === MemberState.Alive || s === MemberState.Suspect) this.liveBy[t]++;
    if (s === MemberState.Alive) {
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]--;
      this.aliveBy[t]++;
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]++;
    } else if (s === MemberState.Dead || s === MemberState.Left) {
      this.deadBy[t]++;
      this.deadViews++;
    } else if (s === MemberState.Suspect) this.suspectViews++;
  }

  private uncount(t: number, s: number): void {
    if (s === MemberState.Alive || s === MemberState.Suspect) this.liveBy[t]--;
    if (s === MemberState.Alive) {
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]--;
      this.aliveBy[t]--;
      if (this.up[t]) this.aliveHist[this.aliveBy[t]]++;
    } else if (s === MemberState.Dead || s === MemberState.Left) {
      this.deadBy[t]--;
      this.deadViews--;
    } else if (s === MemberState.Suspect) this.suspectViews--;
  }

  private settle(): void {
    for (const t of this.pendingDetection.keys()) this.settleTarget(t);
    for (const t of this.pendingJoin.keys()) this.settleTarget(t);
    this.settleFormation();
  }

  private settleTarget(t: number): void {
    if (this.up[t]) {
      const j = this.pendingJoin.get(t);
      if (j && this.aliveBy[t] >= this.upCount - 1) {
        j.allAliveAt = this.now();
        this.pendingJoin.delete(t);
      }
      this.settleFormation();
    } else {
      const d = this.pendingDetection.get(t);
      if (d && this.liveBy[t] === 0) {
        d.allDeclaredAt = this.now();
        this.pendingDetection.delete(t);
      }
    }
  }

  private settleFormation(): void {
    if (
      this.formationOpen && this.formationAt === null && this.initialPending === 0 &&
      this.upCount > 0 && this.aliveHist[this.upCount - 1] === this.upCount
    ) {
      this.formationAt = this.now();
    }
  }

  /** Every live node sees every live node alive, and no live node lists a stopped one. */
  converged(): boolean {
    for (let t = 0; t < this.n; t++) {
      if (this.up[t]) {
        if (this.aliveBy[t] !== this.upCount - 1) return false;
      } else if (this.everStarted[t] && this.liveBy[t] !== 0) return false;
    }
    return true;
  }

  /** Short description of what is not converged (for check details). */
  divergence(): string {
    let notAlive = 0, notDead = 0;
    let example = "";
    for (let t = 0; t < this.n; t++) {
      if (this.up[t] && this.aliveBy[t] !== this.upCount - 1) {
        notAlive++;
        example ||= `${this.nameOf(t)} is up but alive in only ${this.aliveBy[t]} of ${
          this.upCount - 1
        } views`;
      } else if (!this.up[t] && this.everStarted[t] && this.liveBy[t] !== 0) {
        notDead++;
        example ||= `${this.nameOf(t)} is down but still alive or suspect in ${
          this.liveBy[t]
        } views`;
      }
    }
    return `${notAlive} live nodes not seen alive by all, ${notDead} stopped nodes not seen dead by all; e.g. ${example}`;
  }
}
