// What the page knows about a session: tasks, warnings, workers, and the
// timeline data for the range in view (a window from the collector plus what live
// updates closed since).

/** Live items kept at most; older ones are dropped (window queries cover them). */
const LIVE_MAX = 200_000;
/** Marks kept at most (as the collector does). */
const MARKS_MAX = 10_000;
/** What tells two marks apart: the same mark may come in a batch and in the session's list. */
const markKey = (m) => `${m.at_ns}/${m.thread}/${m.label}`;

export class SessionModel {
  constructor(info) {
    this.info = info;
    this.id = info.id;
    this.tasks = new Map();
    this.warnings = [];
    this.warningIds = new Set();
    this.workers = new Map(); // thread -> stats
    this.nowNs = info.now_ns || 0;
    this.nowWall = performance.now();
    this.win = null; // the last window reply
    this.live = { intervals: [], wakes: [], workers: [], markers: [], queues: [] };
    this.marks = []; // moments the program labelled, in time order
    this.markKeys = new Set();
    this.version = 0; // bumped on every change, so views know when to redraw
  }

  setInfo(info) {
    this.info = info;
    if ((info.now_ns || 0) > this.nowNs) this.setNow(info.now_ns);
  }

  setNow(ns) {
    if (ns >= this.nowNs) {
      this.nowNs = ns;
      this.nowWall = performance.now();
    }
  }

  /** The session's present, advancing with the wall clock while it is live. */
  estimatedNow(advancing) {
    if (!advancing) return this.nowNs;
    const ahead = Math.min((performance.now() - this.nowWall) * 1e6, 1e9);
    return this.nowNs + Math.max(0, ahead);
  }

  upsertTask(t) {
    this.tasks.set(t.id, t);
  }

  /** A task's busy, scheduled and idle time up to `now`: its summary's, plus
   * the time since in the state it is in (a task asleep for seconds sends
   * nothing meanwhile). */
  totals(t, now) {
    const out = { busy_ns: t.busy_ns, scheduled_ns: t.scheduled_ns, idle_ns: t.idle_ns };
    const key = { running: "busy_ns", scheduled: "scheduled_ns", idle: "idle_ns" }[t.state];
    if (key) out[key] += Math.max(0, now - Math.max(t.as_of_ns ?? now, t.state_since_ns));
    return out;
  }

  addWarnings(ws) {
    for (const w of ws || []) {
      if (w.withdrawn) {
        // Taken back (it did not hold): no longer shown.
        this.warningIds.delete(w.id);
        this.warnings = this.warnings.filter((x) => x.id !== w.id);
        continue;
      }
      if (this.warningIds.has(w.id)) {
        const i = this.warnings.findIndex((x) => x.id === w.id);
        if (i >= 0) this.warnings[i] = w;
      } else {
        this.warningIds.add(w.id);
        this.warnings.push(w);
      }
    }
  }

  /** Adds marks (from a batch or the session's list), each once, in time order. */
  addMarks(list) {
    let added = false;
    for (const m of list || []) {
      const key = markKey(m);
      if (this.markKeys.has(key)) continue;
      this.markKeys.add(key);
      this.marks.push(m);
      added = true;
    }
    if (!added) return;
    this.marks.sort((a, b) => a.at_ns - b.at_ns);
    if (this.marks.length > MARKS_MAX) {
      for (const m of this.marks.splice(0, this.marks.length - MARKS_MAX)) this.markKeys.delete(markKey(m));
    }
    this.version++;
  }

  applyBatch(b) {
    this.setNow(b.now_ns);
    this.addMarks(b.marks);
    // A batch too big to carry its intervals leaves a gap only a window query fills.
    if (b.events_skipped) this.liveGap = true;
    for (const t of b.tasks || []) this.upsertTask(t);
    this.addWarnings(b.warnings);
    for (const k of ["intervals", "wakes", "workers", "markers", "queues"]) {
      const items = b[k];
      if (!items || !items.length) continue;
      const arr = this.live[k];
      for (const it of items) arr.push(it);
      if (arr.length > LIVE_MAX) arr.splice(0, arr.length - LIVE_MAX / 2);
    }
    this.version++;
  }

  applyStats(s) {
    this.setNow(s.now_ns);
    for (const w of s.workers || []) this.workers.set(w.thread, w);
    this.version++;
  }

  /** Takes a window reply; live items it already covers are dropped. */
  setWindow(reply) {
    this.win = reply;
    this.liveGap = false;
    const until = reply.until_ns;
    const keep = (end) => end > until;
    this.live.intervals = this.live.intervals.filter((i) => keep(i.end_ns));
    this.live.workers = this.live.workers.filter((w) => keep(w.end_ns));
    this.live.wakes = this.live.wakes.filter((w) => keep(w.polled_ns ?? w.at_ns));
    this.live.markers = this.live.markers.filter((m) => keep(m.at_ns + 1));
    this.live.queues = this.live.queues.filter((q) => keep(q.at_ns + 1));
    this.version++;
  }

  /** Worker threads by index, then other threads that ran something (the blocking pool's). */
  workerList() {
    const threads = new Map();
    for (const w of this.workers.values()) threads.set(w.thread, { thread: w.thread, index: w.index, name: w.name, label: `worker ${w.index}` });
    const seen = (spans) => {
      for (const s of spans || []) {
        if (!threads.has(s.thread)) threads.set(s.thread, { thread: s.thread, index: 1e6 + s.thread, name: "", label: `blocking thread ${s.thread}` });
      }
    };
    if (this.win) seen(this.win.workers);
    seen(this.live.workers);
    return [...threads.values()].sort((a, b) => a.index - b.index);
  }

  /**
   * Full-detail items of one kind (`intervals`, `workers`, `wakes`, `markers`): the
   * window's and the live updates'. Merged once per change, not once per use.
   */
  merged(kind) {
    const cached = this.mergedCache && this.mergedCache[kind];
    if (cached && cached.version === this.version) return cached.items;
    // (A collector that sends no such items, an older one, sends none.)
    const base = (this.win && this.win.detail === "full" && this.win[kind]) || [];
    const items = this.live[kind].length ? base.concat(this.live[kind]) : base;
    this.mergedCache = { ...this.mergedCache, [kind]: { version: this.version, items } };
    return items;
  }

  allIntervals() {
    return this.merged("intervals");
  }

  allWorkerSpans() {
    return this.merged("workers");
  }

  allWakes() {
    return this.merged("wakes");
  }

  allMarkers() {
    return this.merged("markers");
  }

  /** Samples of the scheduler's queues in hand, in time order. */
  allQueues() {
    return this.merged("queues");
  }

  /** The queues' latest sample at or before `t` (null before the first). */
  queuesAt(t) {
    let best = null;
    for (const q of this.allQueues()) if (q.at_ns <= t && (!best || q.at_ns > best.at_ns)) best = q;
    return best;
  }

  /** Per worker thread, where its spans in hand end (later, its stats say what it does). */
  workerEnds() {
    if (this.workerEndsCache && this.workerEndsCache.version === this.version) return this.workerEndsCache.ends;
    const ends = new Map();
    for (const s of this.allWorkerSpans()) if (s.end_ns > (ends.get(s.thread) ?? -1)) ends.set(s.thread, s.end_ns);
    this.workerEndsCache = { version: this.version, ends };
    return ends;
  }

  /** Per task, where its intervals in hand end (later, its summary says what it does). */
  taskEnds() {
    if (this.taskEndsCache && this.taskEndsCache.version === this.version) return this.taskEndsCache.ends;
    const ends = new Map();
    for (const i of this.allIntervals()) if (i.end_ns > (ends.get(i.task) ?? -1)) ends.set(i.task, i.end_ns);
    this.taskEndsCache = { version: this.version, ends };
    return ends;
  }

  /** Data ends here; later, tasks are in the state their summary says. */
  dataUntil() {
    let until = this.win ? this.win.until_ns : 0;
    for (const i of this.live.intervals) if (i.end_ns > until) until = i.end_ns;
    return until;
  }

  /** What every task was doing at `t`: {running: [{task, thread}], scheduled: [...], idle: [...]}. */
  stateAt(t) {
    const at = new Map();
    for (const i of this.allIntervals()) {
      if (i.start_ns <= t && t < i.end_ns) at.set(i.task, i);
    }
    const until = this.dataUntil();
    if (t >= until) {
      for (const task of this.tasks.values()) {
        if (task.state !== "done" && task.state_since_ns <= t && !at.has(task.id)) {
          at.set(task.id, { task: task.id, state: task.state, start_ns: task.state_since_ns, thread: task.thread });
        }
      }
    }
    const out = { running: [], scheduled: [], idle: [] };
    for (const i of at.values()) {
      if (out[i.state]) out[i.state].push(i);
    }
    out.scheduled.sort((a, b) => a.start_ns - b.start_ns);
    return out;
  }
}
