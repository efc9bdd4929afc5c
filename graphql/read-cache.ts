/**
 * The API server's cache of finished sweeps: their rows (without the spec) and their
 * leaderboards. A finished sweep's row changes only through an UPDATE of it, and its succeeded
 * trials, and so its leaderboard, only through a trial status change (a retry, a late trial of a
 * cancel); each of those sends the sweep id on `ladder_sweep` (migration 0002). So an entry lives
 * until such a notification, and is trusted only while the LISTEN connection is up: when it
 * drops everything is dropped, and nothing is stored until it is back. A change this process
 * makes itself (a mutation) is dropped at once with `sweepChanged`, so its own answer is not
 * stale while the notification is on its way.
 *
 * Entries are keyed by sweep id only: who may see a sweep is checked on every read against the
 * row's project (`canSee`), so a cached row or leaderboard reaches only requests that could read
 * it from the database.
 *
 * A result is stored only if no notification for its sweep (and no drop) arrived while it was
 * being read; one arriving after the store deletes it. Either way a change committed after the
 * read's snapshot cannot stay cached.
 *
 * Relies on: a succeeded trial's result is written before (or with) its status change to
 * succeeded, never after it (ingest accepts results only while a trial runs).
 */
import { LRUCache } from 'lru-cache';
import { isFinishedSweep } from '../core/db/schema';
import type { LeaderboardEntry, SweepSummary } from '../core/sweeps/store';
import type { NotificationWatcher, SweepNotifier } from './notify';

export interface LeaderboardCacheOptions {
  /** Most leaderboard rows held, over every sweep, a sweep's row counting as one (default 200 000, a few tens of MB). */
  maxRows?: number;
  /** Most cached leaderboards (metric × rung × mode) per sweep (default 32). */
  maxPerSweep?: number;
}

/** One read in flight: the sweeps it reads, and those of them that changed meanwhile. */
export interface CacheTicket {
  epoch: number;
  changed: Set<string>;
}

interface SweepEntries {
  summary?: Readonly<SweepSummary>;
  boards: Map<string, readonly LeaderboardEntry[]>;
}

export class LeaderboardCache implements NotificationWatcher {
  private readonly maxPerSweep: number;
  private readonly entries: LRUCache<string, SweepEntries>;
  private readonly inflight = new Set<CacheTicket>();
  private epoch = 0;
  private unwatch: (() => void) | null = null;
  /** Leaderboard lookups answered from the cache, and not. */
  hits = 0;
  misses = 0;
  /** Sweep-row lookups answered from the cache, and not. */
  summaryHits = 0;
  summaryMisses = 0;

  constructor(
    private readonly notifier: Pick<SweepNotifier, 'listening' | 'watch'>,
    options: LeaderboardCacheOptions = {},
  ) {
    this.maxPerSweep = options.maxPerSweep ?? 32;
    this.entries = new LRUCache<string, SweepEntries>({
      maxSize: options.maxRows ?? 200_000,
      // A sweep's entry is set again after every change to it, so its size is recomputed.
      sizeCalculation: (e) => Math.max(1, [...e.boards.values()].reduce((n, rows) => n + rows.length + 1, e.summary ? 1 : 0)),
    });
  }

  get(sweepId: string, key: string): readonly LeaderboardEntry[] | undefined {
    const rows = this.entries.get(sweepId)?.boards.get(key);
    if (rows) this.hits++;
    else this.misses++;
    return rows;
  }

  /** Before reading: null when nothing read now may be stored (no LISTEN connection yet). */
  begin(): CacheTicket | null {
    this.unwatch ??= this.notifier.watch(this);
    if (!this.notifier.listening) return null;
    const ticket = { epoch: this.epoch, changed: new Set<string>() };
    this.inflight.add(ticket);
    return ticket;
  }

  /** The row of a finished sweep, when cached. */
  getSummary(sweepId: string): Readonly<SweepSummary> | undefined {
    const summary = this.entries.get(sweepId)?.summary;
    if (summary) this.summaryHits++;
    else this.summaryMisses++;
    return summary;
  }

  private storable(ticket: CacheTicket | null, sweepId: string): ticket is CacheTicket {
    return !!ticket && ticket.epoch === this.epoch && !ticket.changed.has(sweepId) && this.notifier.listening;
  }

  /** The caller read `rows` as the leaderboard of a finished sweep. */
  store(ticket: CacheTicket | null, sweepId: string, key: string, rows: readonly LeaderboardEntry[]): void {
    if (!this.storable(ticket, sweepId)) return;
    const old = this.entries.get(sweepId);
    const boards = new Map(old?.boards ?? []);
    boards.delete(key);
    boards.set(key, Object.freeze([...rows]));
    // Oldest first out: a sweep is asked for a handful of metric/rung/mode combinations at most.
    while (boards.size > this.maxPerSweep) boards.delete(boards.keys().next().value!);
    this.entries.set(sweepId, { summary: old?.summary, boards });
  }

  /** Keeps a sweep's row if the sweep is finished; a running sweep's row changes all the time. */
  storeSummary(ticket: CacheTicket | null, summary: SweepSummary): void {
    if (!isFinishedSweep(summary.status) || !this.storable(ticket, summary.id)) return;
    const old = this.entries.get(summary.id);
    this.entries.set(summary.id, { summary: Object.freeze({ ...summary }), boards: old?.boards ?? new Map() });
  }

  end(ticket: CacheTicket | null): void {
    if (ticket) this.inflight.delete(ticket);
  }

  sweepChanged(sweepId: string): void {
    this.entries.delete(sweepId);
    for (const t of this.inflight) t.changed.add(sweepId);
  }

  reset(): void {
    this.epoch++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.unwatch?.();
    this.reset();
  }
}
