/**
 * What every simulator (membership, consensus, RAM, spores) keeps per virtual node for the
 * Host it hands the protocol: the durable store, the link RNG, the timers of the current
 * life, the node's clock (offset and drift) and its traffic and uptime counters; and the
 * clock and timer half of that Host. One life of a node is one protocol instance: a timer
 * set by an earlier life, or after the node went down, never fires (`timers` holds the
 * generation of each key's newest timer; the simulator's timer event carries it).
 */
import { MemoryStore } from "../core/host.ts";
import type { Engine } from "./engine.ts";
import type { Rng } from "./rng.ts";

export interface NodeRuntime {
  readonly index: number;
  up: boolean;
  life: number;
  readonly store: MemoryStore;
  readonly netRng: Rng;
  timers: Map<string, number>;
  timerGen: number;
  clockOffset: number;
  clockDrift: number;
  bytesSent: number;
  bytesReceived: number;
  msgsSent: number;
  upSince: number;
  upMs: number;
}

/** A fresh node's runtime fields (down, life 0, empty store, exact clock). */
export function newNodeRuntime(rootRng: Rng, name: string): Omit<NodeRuntime, "index"> {
  return {
    up: false,
    life: 0,
    store: new MemoryStore(),
    netRng: rootRng.derive(`net/${name}`),
    timers: new Map(),
    timerGen: 0,
    clockOffset: 0,
    clockDrift: 0,
    bytesSent: 0,
    bytesReceived: 0,
    msgsSent: 0,
    upSince: 0,
    upMs: 0,
  };
}

/** The node's own clock at virtual time `now`: offset plus drift-scaled virtual time. */
export function nodeClock(n: NodeRuntime, now: number): number {
  return n.clockOffset + now * (1 + n.clockDrift);
}

/**
 * `setTimer`/`cancelTimer` for life `life` of node `n`: a timer is a `kTimer` event
 * (node index, generation, key) on `engine`; both do nothing once that life is over.
 */
export function lifeTimers(engine: Engine, kTimer: number, n: NodeRuntime, life: number) {
  return {
    setTimer(key: string, delayMs: number): void {
      if (!n.up || n.life !== life) return;
      const gen = ++n.timerGen;
      n.timers.set(key, gen);
      // A drifting clock runs its timers fast or slow in virtual time.
      const virtualDelay = Math.max(0, delayMs) / (1 + n.clockDrift);
      engine.schedule(engine.now + virtualDelay, kTimer, n.index, gen, key);
    },
    cancelTimer(key: string): void {
      if (n.up && n.life === life) n.timers.delete(key);
    },
  };
}
