// The timeline: lanes per worker and per task on a canvas, wake arrows, markers,
// a time axis; zoom, pan, zoom-to-selection, follow-live.

import { fmtDur, fmtDurAt, fmtTick, ticks, taskColor, assignColors, SOURCE_COLORS, sourceKind, wakingTask, warningStretch } from "./format.js";

const LABEL_W = 190;
// The axis: marks' flags and labels on its upper row, the ticks' labels on its lower.
const AXIS_H = 36;
const MARK_ROW = 10;
const TICK_ROW = 28;
const ROW_H = 22;
const MIN_SPAN = 1_000; // 1 µs
const MAX_INTERVALS = 20_000;

export class Timeline extends EventTarget {
  constructor({ canvas, scroller, spacer, tooltip, range }) {
    super();
    this.canvas = canvas;
    this.scroller = scroller;
    this.spacer = spacer;
    this.tooltip = tooltip;
    this.rangeEl = range;
    this.ctx = canvas.getContext("2d");
    this.model = null;
    this.view = { start: 0, end: 3e9 };
    // The view's state: "follow" (the present at the right edge), "paused" (the
    // view and what it shows stand still), "free" (a place the user went to).
    this.mode = "follow";
    this.resumeTo = "follow";
    // Following: how wide the view is. null: the session so far, from 1 s up to
    // 10 s, then the last 10 s; "all": the whole session; a number: that span.
    this.followSpan = null;
    this.advancing = true; // whether the session's present moves on its own
    this.selected = null; // { task, interval? }
    this.collapsed = new Set();
    this.filter = ""; // lanes whose names do not contain it are dimmed
    this.lanes = [];
    this.shownMarks = []; // marks in view at the last draw
    this.fetching = false;
    this.fetchTimer = 0;
    this.dirty = true;
    this.drawnVersion = -1;
    this.frameTimes = [];
    this.colors = {};
    this.readColors();
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      this.readColors();
      this.dirty = true;
    });
    new ResizeObserver(() => this.resize()).observe(scroller);
    scroller.addEventListener("scroll", () => (this.dirty = true));
    this.bindInput();
    this.resize();
    const loop = (t) => {
      this.frame(t);
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  readColors() {
    const cs = getComputedStyle(document.documentElement);
    for (const k of ["bg", "fg", "muted", "line", "lane", "lane-alt", "idle", "parked", "accent", "warn"]) {
      this.colors[k] = cs.getPropertyValue(`--${k}`).trim();
    }
  }

  get follow() {
    return this.mode === "follow";
  }
  get frozen() {
    return this.mode === "paused";
  }

  setModel(model) {
    this.model = model;
    this.selected = null;
    this.followSpan = null;
    this.setMode("follow");
    this.placeFollowed();
    this.dirty = true;
    this.requestWindow(0);
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.scroller.clientWidth;
    const h = this.scroller.clientHeight;
    this.width = w;
    this.height = h;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.dirty = true;
    this.requestWindow(50);
  }

  // ---- time <-> pixels
  get plotW() {
    return Math.max(this.width - LABEL_W, 10);
  }
  x(t) {
    return LABEL_W + ((t - this.view.start) / (this.view.end - this.view.start)) * this.plotW;
  }
  t(x) {
    return this.view.start + ((x - LABEL_W) / this.plotW) * (this.view.end - this.view.start);
  }

  now() {
    return this.model ? this.model.estimatedNow(this.advancing && !this.frozen) : 0;
  }

  /** Shows `[start, end)`; the user went there, so the view stops following
   * (unless `keepFollow`). */
  setView(start, end, { keepFollow = false } = {}) {
    let span = Math.max(end - start, MIN_SPAN);
    if (start < 0) {
      end -= start;
      start = 0;
    }
    this.view = { start, end: start + span };
    // What the pointer was over has moved: a tooltip would describe another place.
    this.tooltip.hidden = true;
    if (!keepFollow) this.setMode("free");
    this.dirty = true;
    this.requestWindow(60);
    this.dispatchEvent(new CustomEvent("view", { detail: this.view }));
  }

  /** Enters a state of the view: "follow", "paused" or "free". */
  setMode(mode) {
    if (this.mode === mode) return;
    if (mode === "paused") this.resumeTo = this.mode;
    this.mode = mode;
    this.tooltip.hidden = true;
    this.dispatchEvent(new CustomEvent("mode", { detail: mode }));
    this.dispatchEvent(new CustomEvent("follow", { detail: mode === "follow" }));
    this.dirty = true;
    this.updateRange();
    this.requestWindow(0);
  }

  /** Follows the present (from any state), or stops following. */
  setFollow(on) {
    if (on) {
      this.setMode("follow");
      this.placeFollowed();
    } else if (this.mode === "follow") this.setMode("free");
  }

  /** Pauses the view where it is, or resumes what it did before. */
  togglePause() {
    if (this.mode !== "paused") this.setMode("paused");
    else if (this.resumeTo === "follow") this.setFollow(true);
    else this.setMode(this.resumeTo);
  }

  /** What the view is doing, for the line above it. */
  modeText() {
    if (this.mode === "follow") {
      const how = this.followSpan === "all" ? "the whole session" : typeof this.followSpan === "number" ? `the last ${fmtDur(this.followSpan)}` : "the session so far (10 s at most)";
      return `● following live: ${how} · Space pauses · arrows or drag to look back`;
    }
    if (this.mode === "paused") return "❚❚ paused: the view stands still · Space resumes";
    return "browsing · F follows live · 0 shows all";
  }

  /** The span a followed view shows now. */
  followedSpan() {
    const now = this.now();
    if (this.followSpan === "all") return Math.max(now * 1.02, MIN_SPAN);
    if (typeof this.followSpan === "number") return this.followSpan;
    // The session so far, never a sliver: 1 s at least, 10 s at most.
    return Math.min(Math.max(now * 1.03, 1e9), 10e9);
  }

  /** Puts the followed view at the present. */
  placeFollowed() {
    const span = this.followedSpan();
    const now = this.now();
    const end = Math.max(span, now + span * 0.02);
    this.view = { start: end - span, end };
    this.dirty = true;
  }

  /** The whole session: followed on as it grows when following. */
  fitAll() {
    if (this.mode === "follow") {
      this.followSpan = "all";
      this.placeFollowed();
      this.requestWindow(0);
      return;
    }
    const end = Math.max(this.now(), 1_000_000);
    this.setView(0, end * 1.02);
  }

  /** Zooms by `factor` at `atX` (the centre, or the present when following:
   * following goes on with the new width). */
  zoom(factor, atX) {
    this.tooltip.hidden = true;
    if (this.mode === "follow") {
      this.followSpan = Math.max(MIN_SPAN, (this.view.end - this.view.start) * factor);
      this.placeFollowed();
      this.updateRange();
      this.requestWindow(60);
      this.dispatchEvent(new CustomEvent("view", { detail: this.view }));
      return;
    }
    const at = atX == null ? (this.view.start + this.view.end) / 2 : this.t(atX);
    const start = at - (at - this.view.start) * factor;
    const end = at + (this.view.end - at) * factor;
    this.setView(start, end);
    this.dropHiddenPoll();
  }

  pan(dt) {
    this.setView(this.view.start + dt, this.view.end + dt);
    this.dropHiddenPoll();
  }

  /** A selected poll the user moved out of view is no longer selected (its task stays). */
  dropHiddenPoll() {
    const iv = this.selected && this.selected.interval;
    if (iv && (iv.end_ns < this.view.start || iv.start_ns > this.view.end)) this.select(this.selected.task);
  }

  /** Dims the lanes of tasks whose names do not contain `q` (case aside). */
  setFilter(q) {
    this.filter = (q || "").trim().toLowerCase();
    this.dirty = true;
  }

  /** Whether lane `lane` is dimmed by the filter. */
  dimmed(lane) {
    if (!this.filter || !this.model) return false;
    const named = (id) => {
      const t = this.model.tasks.get(id) || {};
      return `${t.name || ""} ${t.context || ""}`.toLowerCase().includes(this.filter);
    };
    if (lane.kind === "task") return !named(lane.id);
    if (lane.kind === "group") return !lane.members.some(named);
    return false;
  }

  /** Zooms to the selected task's life (from its spawn to its end, or now). */
  zoomToSelected() {
    const t = this.selected && this.model && this.model.tasks.get(this.selected.task);
    if (t) this.zoomTo(t.spawned_ns, t.ended_ns ?? this.now());
  }

  /** Shows `[start, end]` with a margin around it, within the session. */
  zoomTo(start, end) {
    const pad = Math.max((end - start) * 0.25, 500_000);
    const last = Math.max(this.now(), end);
    const a = Math.max(0, start - pad);
    const b = Math.min(last * 1.01 + 1, end + pad);
    this.setView(a, Math.max(b, a + MIN_SPAN));
  }

  /** Centres `t` (keeping the zoom), or zooms to show `span` around it. */
  jumpTo(t, span) {
    const s = span || this.view.end - this.view.start;
    this.setView(t - s / 2, t + s / 2);
  }

  select(task, interval = null) {
    this.selected = task == null ? null : { task, interval };
    this.dirty = true;
    // Bring its lane into view.
    const i = this.lanes.findIndex((l) => l.kind === "task" && l.id === task);
    if (i >= 0) {
      const y = i * ROW_H;
      const top = this.scroller.scrollTop;
      const visible = this.height - AXIS_H;
      if (y < top || y > top + visible - ROW_H) this.scroller.scrollTop = Math.max(0, y - visible / 3);
    }
    this.dispatchEvent(new CustomEvent("select", { detail: this.selected }));
  }

  // ---- data
  requestWindow(delay) {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = setTimeout(() => this.fetchWindow(), delay);
  }

  async fetchWindow() {
    const m = this.model;
    if (!m || !this.conn || this.fetching) {
      if (this.fetching) this.requestWindow(50);
      return;
    }
    const span = this.view.end - this.view.start;
    const start = Math.max(0, this.view.start - span);
    const end = this.view.end + span;
    const buckets = Math.max(50, Math.round((this.plotW * 3) / 2));
    this.fetching = true;
    try {
      const reply = await this.conn.window(m.id, start, end, this.maxIntervals ?? MAX_INTERVALS, buckets);
      if (this.model === m) {
        m.setWindow(reply);
        this.dirty = true;
      }
    } catch {
      // Connection trouble: the banner says so; try again when it is back.
    } finally {
      this.fetching = false;
    }
  }

  /** Whether the window in hand covers the view well enough. */
  windowStale() {
    const w = this.model && this.model.win;
    if (!w) return true;
    const span = this.view.end - this.view.start;
    if (this.view.start < w.start_ns) return true;
    // Following: live updates extend the window, unless they came without detail.
    if (this.view.end > w.end_ns && !(this.follow && !this.model.liveGap)) return true;
    if (w.detail === "aggregate" && w.bucket_ns * 4 > span / this.plotW * 6) return true; // zoomed in past its buckets
    return false;
  }

  // ---- layout
  layout() {
    const m = this.model;
    const lanes = [];
    if (!m) return lanes;
    const workers = m.workerList();
    if (workers.length) {
      lanes.push({ kind: "section", label: "Workers" });
      for (const w of workers) lanes.push({ kind: "worker", thread: w.thread, label: w.label });
    }
    lanes.push({ kind: "section", label: "Tasks" });
    const groups = new Map();
    const tasks = [...m.tasks.values()].sort((a, b) => a.spawned_ns - b.spawned_ns || a.id - b.id);
    for (const t of tasks) {
      const key = t.given_name ? `name:${t.given_name}` : `loc:${t.location}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(t);
    }
    // A task that said what it was doing (its tracing span: `GET /blocking`)
    // is labelled by that first: a server's connection tasks share a name.
    const label = (t) => (t.context ? `${t.context} · ${t.name} #${t.id}` : `${t.name} #${t.id}`);
    for (const [key, members] of groups) {
      if (members.length === 1) {
        const t = members[0];
        lanes.push({ kind: "task", id: t.id, label: label(t) });
        continue;
      }
      const collapsed = this.collapsed.has(key);
      const groupLabel = `${members[0].name} ×${members.length}`;
      lanes.push({ kind: "group", key, label: groupLabel, collapsed, members: members.map((t) => t.id) });
      if (!collapsed) for (const t of members) lanes.push({ kind: "task", id: t.id, label: `  ${label(t)}`, group: key });
    }
    // Colours in lane order: neighbours never share one.
    const ids = [];
    for (const l of lanes) {
      if (l.kind === "task") ids.push(l.id);
      else if (l.kind === "group" && l.collapsed) ids.push(...l.members);
    }
    assignColors(ids);
    return lanes;
  }

  laneAtY(y) {
    const i = Math.floor((y - AXIS_H + this.scroller.scrollTop) / ROW_H);
    return i >= 0 && i < this.lanes.length ? { index: i, lane: this.lanes[i] } : null;
  }

  laneY(index) {
    return AXIS_H + index * ROW_H - this.scroller.scrollTop;
  }

  // ---- drawing
  frame(ts) {
    const m = this.model;
    if (m && this.mode === "follow") {
      const before = this.view;
      const span = this.followedSpan();
      const end = Math.max(span, this.now() + span * 0.02);
      if (Math.abs(end - before.end) > span / (this.plotW * 2) || Math.abs(span - (before.end - before.start)) > 1) {
        this.view = { start: end - span, end };
        this.dirty = true;
        if (this.windowStale()) this.requestWindow(100);
      }
    }
    if (m && m.version !== this.drawnVersion && !this.frozen) this.dirty = true;
    if (!this.dirty) return;
    const t0 = performance.now();
    this.draw();
    this.dirty = false;
    if (m) this.drawnVersion = m.version;
    this.frameTimes.push(performance.now() - t0);
    if (this.frameTimes.length > 240) this.frameTimes.shift();
    if (this.windowStale()) this.requestWindow(80);
  }

  draw() {
    const { ctx, colors: c } = this;
    const W = this.width;
    const H = this.height;
    this.lanes = this.layout();
    // The scroll height is the lanes'; the canvas (first, sticky) takes its own
    // height of it, the spacer the rest.
    this.spacer.style.height = `${Math.max(0, AXIS_H + this.lanes.length * ROW_H + 8 - H)}px`;
    ctx.fillStyle = c.bg;
    ctx.fillRect(0, 0, W, H);
    // Lanes' backgrounds and labels.
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_H));
    const last = Math.min(this.lanes.length, first + Math.ceil(H / ROW_H) + 1);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (let i = first; i < last; i++) {
      const lane = this.lanes[i];
      const y = this.laneY(i);
      const sel = this.selected && lane.kind === "task" && lane.id === this.selected.task;
      ctx.fillStyle = sel ? hexAlpha(c.accent, 0.16) : i % 2 ? c["lane-alt"] : c.lane;
      ctx.fillRect(0, y, W, ROW_H);
      if (lane.kind === "section") {
        ctx.fillStyle = c.muted;
        ctx.font = "600 11px system-ui, sans-serif";
        ctx.fillText(lane.label.toUpperCase(), 8, y + ROW_H / 2);
        ctx.font = "12px system-ui, sans-serif";
        continue;
      }
      ctx.fillStyle = lane.kind === "task" ? taskColor(lane.id) : c.muted;
      if (lane.kind === "task") ctx.fillRect(4, y + 6, 4, ROW_H - 12);
      ctx.fillStyle = c.fg;
      const prefix = lane.kind === "group" ? (lane.collapsed ? "▸ " : "▾ ") : "";
      ctx.fillText(clip(ctx, prefix + lane.label, LABEL_W - 16), 12, y + ROW_H / 2);
    }
    // Plot area.
    ctx.save();
    ctx.beginPath();
    ctx.rect(LABEL_W, AXIS_H, W - LABEL_W, H - AXIS_H);
    ctx.clip();
    this.drawGrid(first, last);
    // Marks in view, found once a frame: the lines, the axis flags and hovering use them.
    this.shownMarks = this.visibleMarks();
    if (this.model) {
      this.drawData(first, last);
      this.drawMarks();
    }
    if (this.selecting) {
      const [a, b] = [this.selecting.x0, this.selecting.x1].sort((p, q) => p - q);
      ctx.fillStyle = hexAlpha(c.accent, 0.18);
      ctx.fillRect(a, AXIS_H, b - a, H - AXIS_H);
    }
    ctx.restore();
    // The filter dims the lanes it leaves out (label and data).
    if (this.filter) {
      ctx.fillStyle = hexAlpha(c.bg, 0.75);
      for (let i = first; i < last; i++) if (this.dimmed(this.lanes[i])) ctx.fillRect(0, this.laneY(i), W, ROW_H);
    }
    this.drawAxis();
    ctx.strokeStyle = c.line;
    ctx.beginPath();
    ctx.moveTo(LABEL_W + 0.5, 0);
    ctx.lineTo(LABEL_W + 0.5, H);
    ctx.stroke();
    this.updateRange();
  }

  /** The line above the timeline: the range in view and what the view does. */
  updateRange() {
    const precision = (this.view.end - this.view.start) / 100;
    this.rangeEl.textContent = `${fmtTick(Math.round(this.view.start), precision)} – ${fmtTick(Math.round(this.view.end), precision)}  (span ${fmtDur(this.view.end - this.view.start)})${
      this.model && this.model.win && this.model.win.detail === "aggregate" ? " · zoomed out: summarised" : ""
    } · ${this.modeText()}`;
  }

  /** Marks in view: those the program labelled (`looptrace::mark`). */
  visibleMarks() {
    if (!this.model) return [];
    const { start, end } = this.view;
    return this.model.marks.filter((m) => m.at_ns >= start && m.at_ns <= end);
  }

  /** A dashed line across every lane at each mark. */
  drawMarks() {
    const { ctx, colors: c } = this;
    ctx.strokeStyle = c.accent;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    for (const m of this.shownMarks) {
      const x = Math.round(this.x(m.at_ns)) + 0.5;
      ctx.moveTo(x, AXIS_H);
      ctx.lineTo(x, this.height);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.lineWidth = 1;
  }

  drawGrid() {
    const { ctx, colors: c } = this;
    const { step, ticks: ts } = ticks(this.view.start, this.view.end, Math.max(2, this.plotW / 110));
    this.tickStep = step;
    ctx.strokeStyle = c.line;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const t of ts) {
      const x = Math.round(this.x(t)) + 0.5;
      ctx.moveTo(x, AXIS_H);
      ctx.lineTo(x, this.height);
    }
    ctx.stroke();
    this.axisTicks = ts;
  }

  drawAxis() {
    const { ctx, colors: c } = this;
    ctx.fillStyle = c.bg;
    ctx.fillRect(0, 0, this.width, AXIS_H);
    ctx.strokeStyle = c.line;
    ctx.beginPath();
    ctx.moveTo(0, AXIS_H - 0.5);
    ctx.lineTo(this.width, AXIS_H - 0.5);
    ctx.stroke();
    ctx.fillStyle = c.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const t of this.axisTicks || []) {
      const x = this.x(t);
      if (x < LABEL_W + 2) continue;
      ctx.fillText(fmtTick(t, this.tickStep), x + 3, TICK_ROW);
    }
    // Marks: a flag on the axis's upper row with the label (hover shows it
    // whole); the ticks keep the lower row.
    ctx.font = "600 11px system-ui, sans-serif";
    let freeFrom = LABEL_W;
    for (const m of this.shownMarks) {
      const x = this.x(m.at_ns);
      ctx.fillStyle = c.accent;
      ctx.beginPath();
      ctx.moveTo(x - 5, 3);
      ctx.lineTo(x + 5, 3);
      ctx.lineTo(x, 12);
      ctx.closePath();
      ctx.fill();
      ctx.fillRect(Math.round(x) - 0.5, 12, 1, AXIS_H - 12);
      if (x + 6 < freeFrom) continue; // labels never overlap: the earlier one wins
      const text = clip(ctx, m.label, Math.max(40, Math.min(220, this.width - x - 10)));
      const w = ctx.measureText(text).width;
      ctx.fillText(text, x + 8, MARK_ROW);
      freeFrom = x + w + 16;
    }
    // The present.
    if (this.model) {
      const nx = this.x(this.now());
      if (nx > LABEL_W && nx < this.width) {
        ctx.strokeStyle = c.warn;
        ctx.beginPath();
        ctx.moveTo(nx + 0.5, 0);
        ctx.lineTo(nx + 0.5, this.height);
        ctx.stroke();
      }
    }
  }

  laneIndexes() {
    const task = new Map();
    const worker = new Map();
    const group = new Map();
    this.lanes.forEach((l, i) => {
      if (l.kind === "task") task.set(l.id, i);
      if (l.kind === "worker") worker.set(l.thread, i);
      if (l.kind === "group" && l.collapsed) for (const id of l.members) group.set(id, i);
    });
    return { task, worker, group };
  }

  drawData(first, last) {
    const { ctx, colors: c, model: m } = this;
    const idx = this.laneIndexes();
    const laneOf = (task) => idx.task.get(task) ?? idx.group.get(task);
    const visible = (i) => i != null && i >= first && i < last;
    const vs = this.view.start;
    const ve = this.view.end;
    const win = m.win;
    if (win && win.detail === "aggregate") this.drawAggregate(win, idx, first, last);
    // Intervals.
    for (const iv of m.allIntervals()) {
      if (iv.end_ns < vs || iv.start_ns > ve) continue;
      const li = laneOf(iv.task);
      if (!visible(li)) continue;
      this.drawInterval(iv, this.laneY(li));
    }
    // What is still going on, after each task's data in hand, up to now.
    const taskEnds = m.taskEnds();
    const now = this.now();
    for (const t of m.tasks.values()) {
      if (t.state === "done") continue;
      const li = laneOf(t.id);
      if (!visible(li)) continue;
      const start = Math.max(t.state_since_ns, taskEnds.get(t.id) ?? 0);
      if (start >= now || now < vs || start > ve) continue;
      this.drawInterval({ task: t.id, state: t.state, start_ns: start, end_ns: now }, this.laneY(li), true);
    }
    // Worker lanes.
    for (const s of m.allWorkerSpans()) {
      if (s.end_ns < vs || s.start_ns > ve) continue;
      const li = idx.worker.get(s.thread);
      if (!visible(li)) continue;
      const y = this.laneY(li);
      const x0 = this.x(s.start_ns);
      const w = Math.max(this.x(s.end_ns) - x0, 1);
      if (s.task == null) {
        ctx.fillStyle = c.parked;
        ctx.fillRect(x0, y + 7, w, ROW_H - 14);
      } else {
        ctx.fillStyle = taskColor(s.task);
        ctx.fillRect(x0, y + 3, w, ROW_H - 6);
      }
    }
    // Each worker's local run queue, sampled: a step line along the lane's
    // bottom (its height: the tasks waiting, up to 8), and a tick where it stole.
    const queues = m.allQueues();
    if (queues.length) {
      const byIndex = new Map([...m.workers.values()].map((w) => [w.index, w.thread]));
      ctx.fillStyle = hexAlpha(c.warn, 0.45);
      for (let k = 0; k < queues.length; k++) {
        const q = queues[k];
        const next = queues[k + 1];
        const to = next ? next.at_ns : Math.max(q.at_ns, m.dataUntil());
        if (to < vs || q.at_ns > ve) continue;
        q.local.forEach((depth, i) => {
          const li = idx.worker.get(byIndex.get(i));
          if (!visible(li)) return;
          const y = this.laneY(li);
          const x0 = this.x(q.at_ns);
          if (depth > 0) {
            const h = (Math.min(depth, 8) / 8) * (ROW_H - 6);
            ctx.fillRect(x0, y + ROW_H - 3 - h, Math.max(this.x(to) - x0, 1), h);
          }
          const prev = queues[k - 1];
          if (prev && q.steals[i] > (prev.steals[i] ?? 0)) {
            ctx.save();
            ctx.fillStyle = c.fg;
            ctx.font = "10px system-ui, sans-serif";
            ctx.fillText("⇠", x0 - 3, y + 6);
            ctx.restore();
          }
        });
      }
    }
    // What each worker is doing now, after its spans in hand: parked, or polling.
    const ends = m.workerEnds();
    for (const w of m.workers.values()) {
      const li = idx.worker.get(w.thread);
      if (!visible(li) || (!w.parked && w.running == null)) continue;
      const start = Math.max(w.state_since_ns ?? 0, ends.get(w.thread) ?? 0, vs);
      const end = Math.min(now, ve);
      if (start >= end) continue;
      const y = this.laneY(li);
      const x0 = this.x(start);
      const width = Math.max(this.x(end) - x0, 1);
      if (w.parked) {
        ctx.fillStyle = c.parked;
        ctx.fillRect(x0, y + 7, width, ROW_H - 14);
      } else {
        ctx.fillStyle = taskColor(w.running);
        ctx.fillRect(x0, y + 3, width, ROW_H - 6);
      }
    }
    // Markers.
    for (const mk of m.allMarkers()) {
      if (mk.at_ns < vs || mk.at_ns > ve) continue;
      const li = laneOf(mk.task);
      if (!visible(li)) continue;
      this.drawMarker(mk, this.x(mk.at_ns), this.laneY(li) + ROW_H / 2);
    }
    // Warnings: a flag on the task's lane at their moment, what they are about
    // underlined (a blocking poll for its length).
    // A poll on another worker than the task's last one (stolen or moved): a
    // small hook at its start, pointing back (read by the tests too).
    this.shownMoves = [];
    ctx.strokeStyle = c.fg;
    ctx.lineWidth = 1.5;
    for (const iv of m.allIntervals()) {
      if (iv.moved_from == null || iv.start_ns < vs || iv.start_ns > ve) continue;
      const li = laneOf(iv.task);
      if (!visible(li)) continue;
      const x = this.x(iv.start_ns);
      const y = this.laneY(li) + ROW_H - 4;
      ctx.beginPath();
      ctx.moveTo(x, y - 6);
      ctx.lineTo(x, y);
      ctx.lineTo(x - 5, y);
      ctx.moveTo(x - 3, y - 2);
      ctx.lineTo(x - 5, y);
      ctx.lineTo(x - 3, y + 2);
      ctx.stroke();
      this.shownMoves.push({ task: iv.task, at_ns: iv.start_ns, from: iv.moved_from, to: iv.thread });
    }
    ctx.lineWidth = 1;
    this.shownWarnings = [];
    for (const w of m.warnings) {
      if (w.task == null) continue;
      const li = laneOf(w.task);
      if (!visible(li)) continue;
      const [a, b] = warningStretch(w);
      if (b < vs || a > ve) continue;
      const y = this.laneY(li);
      const xa = this.x(a);
      ctx.fillStyle = c.warn;
      ctx.fillRect(xa, y + ROW_H - 3, Math.max(this.x(b) - xa, 2), 2);
      ctx.beginPath();
      ctx.moveTo(xa - 4, y + 1);
      ctx.lineTo(xa + 4, y + 1);
      ctx.lineTo(xa, y + 8);
      ctx.closePath();
      ctx.fill();
      this.shownWarnings.push({ w, x: xa, lane: li });
    }
    // Wake arrows: from the waker to the woken task's next poll.
    const wakes = m.allWakes();
    let drawn = 0;
    // What was drawn from where (read by the tests, as the page's own record).
    this.arrowsDrawn = [];
    let labelFree = LABEL_W;
    for (const w of wakes) {
      const end = w.polled_ns ?? w.at_ns;
      if (end < vs || w.at_ns > ve) continue;
      const to = laneOf(w.task);
      if (to == null) continue;
      const kind = sourceKind(w.by, w.task);
      let from;
      const waker = wakingTask(w.by);
      if (waker != null) from = laneOf(waker);
      // The timer and the I/O driver run on a worker, a blocking closure on its
      // thread: from that thread's lane. A thread outside the runtime has none:
      // from the axis, labelled.
      else if (kind !== "external") from = idx.worker.get(w.thread);
      const outside = from == null;
      const y1 = outside ? AXIS_H + 2 : this.laneY(from) + ROW_H / 2;
      const y2 = this.laneY(to) + ROW_H / 2;
      if ((y1 < AXIS_H && y2 < AXIS_H) || (y1 > this.height && y2 > this.height)) continue;
      if (++drawn > 3000) break;
      const color = SOURCE_COLORS[kind] || SOURCE_COLORS.external;
      this.arrowsDrawn.push({ task: w.task, by: w.by, kind, from: outside ? null : this.lanes[from], outside });
      this.drawArrow(this.x(w.at_ns), y1, this.x(end), y2, color, w.polled_ns == null);
      // Labelled where labels do not crowd each other.
      const lx = this.x(w.at_ns) + 4;
      if (outside && lx >= labelFree) {
        ctx.fillStyle = color;
        ctx.font = "10px system-ui, sans-serif";
        const text = kind === "external" ? "from outside the runtime" : `from ${kind}`;
        ctx.fillText(text, lx, AXIS_H + 8);
        labelFree = lx + ctx.measureText(text).width + 12;
        ctx.font = "12px system-ui, sans-serif";
      }
    }
  }

  drawInterval(iv, y, open = false) {
    const { ctx, colors: c } = this;
    // The benchmark's probe: when each task was first drawn.
    if (this.drawSeen && !this.drawSeen.has(iv.task)) this.drawSeen.set(iv.task, performance.timeOrigin + performance.now());
    const x0 = this.x(iv.start_ns);
    const x1 = this.x(iv.end_ns);
    const w = Math.max(x1 - x0, iv.state === "running" ? 2 : 1);
    if (iv.state === "running") {
      ctx.fillStyle = taskColor(iv.task);
      ctx.fillRect(x0, y + 3, w, ROW_H - 6);
      // A gap at its start: back-to-back polls read as separate polls.
      if (w >= 4) {
        ctx.fillStyle = c.bg;
        ctx.fillRect(Math.round(x0), y + 3, 1, ROW_H - 6);
      }
      if (iv.ready && w >= 3) {
        // Ready: a dark cap at the end.
        ctx.fillStyle = c.fg;
        ctx.fillRect(x1 - 2, y + 3, 2, ROW_H - 6);
      }
      if (this.selected && this.selected.interval && this.selected.interval.start_ns === iv.start_ns && this.selected.task === iv.task) {
        ctx.strokeStyle = c.fg;
        ctx.lineWidth = 2;
        ctx.strokeRect(x0 - 1, y + 2, w + 2, ROW_H - 4);
        ctx.lineWidth = 1;
      }
    } else if (iv.state === "scheduled") {
      ctx.fillStyle = taskColor(iv.task, 78);
      ctx.fillRect(x0, y + 7, w, ROW_H - 14);
    } else if (iv.state === "idle") {
      ctx.fillStyle = c.idle;
      ctx.fillRect(x0, y + ROW_H / 2 - 1, w, 2);
    }
    if (open && iv.state === "running") {
      ctx.fillStyle = hexAlpha(c.bg, 0.35);
      ctx.fillRect(x0, y + 3, w, ROW_H - 6);
    }
  }

  drawAggregate(win, idx, first, last) {
    const { ctx, colors: c } = this;
    const bucket = win.bucket_ns;
    const drawBars = (values, y, color, top, height) => {
      ctx.fillStyle = color;
      for (let b = 0; b < values.length; b++) {
        const v = values[b];
        if (!v) continue;
        const s = win.start_ns + b * bucket;
        const x0 = this.x(s);
        const x1 = this.x(s + bucket);
        if (x1 < LABEL_W || x0 > this.width) continue;
        const h = Math.max(1, Math.min(1, v) * height);
        ctx.fillRect(x0, y + top + (height - h), Math.max(x1 - x0, 1), h);
      }
    };
    for (const t of win.tasks) {
      const li = idx.task.get(t.task) ?? idx.group.get(t.task);
      if (li == null || li < first || li >= last) continue;
      const y = this.laneY(li);
      drawBars(t.scheduled, y, taskColor(t.task, 80), 3, ROW_H - 6);
      drawBars(t.running, y, taskColor(t.task), 3, ROW_H - 6);
    }
    for (const w of win.workers) {
      const li = idx.worker.get(w.thread);
      if (li == null || li < first || li >= last) continue;
      const y = this.laneY(li);
      drawBars(w.parked, y, c.parked, 3, ROW_H - 6);
      drawBars(w.busy, y, c.accent, 3, ROW_H - 6);
    }
    // Each worker's local run queue per bucket (its deepest, up to 8), along the
    // lane's bottom as at full detail.
    const q = win.queues;
    this.queueBucketsDrawn = 0;
    if (q) {
      const m = this.model;
      const byIndex = new Map([...m.workers.values()].map((w) => [w.index, w.thread]));
      q.local.forEach((depths, i) => {
        const li = idx.worker.get(byIndex.get(i));
        if (li == null || li < first || li >= last) return;
        const scaled = depths.map((d) => Math.min(d, 8) / 8);
        drawBars(scaled, this.laneY(li), hexAlpha(c.warn, 0.45), 3, ROW_H - 6);
        this.queueBucketsDrawn += depths.filter((d) => d > 0).length;
      });
    }
  }

  drawMarker(mk, x, y) {
    const { ctx } = this;
    ctx.save();
    switch (mk.kind) {
      case "timer_armed":
        ctx.strokeStyle = SOURCE_COLORS.timer;
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, Math.PI * 2);
        ctx.stroke();
        break;
      case "timer_fired":
        ctx.fillStyle = SOURCE_COLORS.timer;
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, Math.PI * 2);
        ctx.fill();
        break;
      case "io_ready":
        ctx.fillStyle = SOURCE_COLORS.io;
        ctx.beginPath();
        ctx.moveTo(x, y - 4.5);
        ctx.lineTo(x + 4.5, y);
        ctx.lineTo(x, y + 4.5);
        ctx.lineTo(x - 4.5, y);
        ctx.fill();
        break;
      case "spawn":
        ctx.fillStyle = this.colors.fg;
        ctx.beginPath();
        ctx.moveTo(x, y - 5);
        ctx.lineTo(x + 5, y);
        ctx.lineTo(x, y + 5);
        ctx.fill();
        break;
      case "terminate":
        ctx.fillStyle = this.colors.fg;
        ctx.fillRect(x - 1, y - 6, 2, 12);
        break;
    }
    ctx.restore();
  }

  drawArrow(x1, y1, x2, y2, color, dashed) {
    const { ctx } = this;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 1.3;
    if (dashed) ctx.setLineDash([3, 3]);
    const dx = Math.max(Math.abs(x2 - x1) / 2, 12);
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.bezierCurveTo(x1 + dx, y1, x2 - dx, y2, x2, y2);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(x2, y2);
    ctx.lineTo(x2 - 6, y2 - 3.5);
    ctx.lineTo(x2 - 6, y2 + 3.5);
    ctx.fill();
    ctx.beginPath();
    ctx.arc(x1, y1, 2, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
  }

  // ---- hit testing
  hit(x, y) {
    if (y < AXIS_H && x >= LABEL_W && this.model) {
      const mark = this.shownMarks.find((m) => Math.abs(this.x(m.at_ns) - x) <= 6);
      return mark ? { mark } : null;
    }
    const l = this.laneAtY(y);
    if (!l || !this.model) return null;
    const { lane } = l;
    if (x < LABEL_W) return { lane };
    // A warning's flag, in the lane's upper part.
    const flag = (this.shownWarnings || []).find((s) => s.lane === l.index && Math.abs(s.x - x) <= 5);
    if (flag && y - this.laneY(l.index) < ROW_H / 2) return { lane, warning: flag.w };
    const t = this.t(x);
    const slop = 3 * ((this.view.end - this.view.start) / this.plotW);
    const { start: vs, end: ve } = this.view;
    if (lane.kind === "task") {
      let best = null;
      for (const iv of this.model.allIntervals()) {
        // Only what is drawn in view, under the pointer (3 px either side).
        if (iv.task !== lane.id || iv.end_ns < vs || iv.start_ns > ve) continue;
        if (iv.start_ns - slop > t || iv.end_ns + slop < t) continue;
        // The nearest running poll wins over a state around it.
        const d = t < iv.start_ns ? iv.start_ns - t : t > iv.end_ns ? t - iv.end_ns : 0;
        const bd = best ? (t < best.start_ns ? best.start_ns - t : t > best.end_ns ? t - best.end_ns : 0) : Infinity;
        if (!best || (iv.state === "running" && (best.state !== "running" || d < bd))) best = iv;
      }
      if (!best) {
        const task = this.model.tasks.get(lane.id);
        const from = task && Math.max(task.state_since_ns, this.model.taskEnds().get(task.id) ?? 0);
        if (task && task.state !== "done" && t >= from && t <= this.now()) {
          best = { task: task.id, state: task.state, start_ns: from, end_ns: this.now(), open: true };
        }
      }
      return { lane, t, interval: best };
    }
    if (lane.kind === "worker") {
      for (const s of this.model.allWorkerSpans()) {
        if (s.thread === lane.thread && s.start_ns - slop <= t && t <= s.end_ns + slop) return { lane, t, span: s };
      }
    }
    return { lane, t };
  }

  describe(h) {
    if (!h) return "";
    // Times as precise as a pixel of the view.
    const px = (this.view.end - this.view.start) / this.plotW;
    const at = (t) => fmtTick(Math.round(t), px);
    const fmtDur = (ns) => fmtDurAt(ns, px);
    if (h.mark) return `${h.mark.label}\nmarked at ${at(h.mark.at_ns)}`;
    if (h.warning) return `⚠ ${h.warning.kind.replace(/_/g, " ")}${h.warning.count > 1 ? ` ×${h.warning.count}` : ""}\n${h.warning.message}\nWhat to do: ${h.warning.fix}`;
    const m = this.model;
    const name = (id) => (m.tasks.get(id) || { name: `task ${id}` }).name;
    if (h.interval) {
      const iv = h.interval;
      const lines = [`${name(iv.task)} #${iv.task}`, `${iv.state}${iv.open ? " (now)" : ""} for ${fmtDur(iv.end_ns - iv.start_ns)}`, `from ${at(iv.start_ns)}`];
      if (iv.context) lines.push(`in ${iv.context}`);
      if (iv.moved_from != null) lines.push(`moved: its last poll ran on ${threadName(m, iv.moved_from)}, this one on ${threadName(m, iv.thread)} (stolen or moved)`);
      if (iv.state === "running" && iv.ready != null) lines.push(iv.ready ? "returned Ready" : "returned Pending");
      if (iv.woken_by) lines.push(`woken by ${describeSource(iv.woken_by, m)}`);
      return lines.join("\n");
    }
    if (h.span) {
      const s = h.span;
      return s.task == null
        ? `${h.lane.label}: parked for ${fmtDur(s.end_ns - s.start_ns)}`
        : `${h.lane.label} polled ${name(s.task)} #${s.task}\nfor ${fmtDur(s.end_ns - s.start_ns)} from ${at(s.start_ns)}`;
    }
    if (h.lane && h.lane.kind === "group") {
      const first = m.tasks.get(h.lane.members[0]);
      const where = first && first.location ? `\nspawned at ${first.location}` : "";
      return `${h.lane.label}: click to ${h.lane.collapsed ? "expand" : "collapse"}${where}`;
    }
    if (h.lane && h.lane.kind === "task") {
      // The lane's name is short; its whole spawn location is here.
      const t = m.tasks.get(h.lane.id);
      if (t) return `${t.name} #${t.id}${t.location ? `\nspawned at ${t.location}` : ""}`;
    }
    return "";
  }

  // ---- input
  bindInput() {
    const cv = this.canvas;
    const pos = (e) => {
      const r = cv.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    cv.addEventListener(
      "wheel",
      (e) => {
        const { x } = pos(e);
        if (x < LABEL_W && !e.ctrlKey) return; // over the labels: scroll the lanes
        e.preventDefault();
        if (e.shiftKey) {
          this.pan(((e.deltaY || e.deltaX) / this.plotW) * (this.view.end - this.view.start));
          return;
        }
        if (Math.abs(e.deltaX) > Math.abs(e.deltaY) && !e.ctrlKey) {
          this.pan((e.deltaX / this.plotW) * (this.view.end - this.view.start));
          return;
        }
        // Wheel and pinch (ctrl+wheel) zoom at the cursor.
        const factor = Math.exp((e.deltaY * (e.ctrlKey ? 2 : 1)) / 500);
        this.zoom(factor, Math.max(x, LABEL_W));
      },
      { passive: false },
    );
    let drag = null;
    cv.addEventListener("pointerdown", (e) => {
      const { x, y } = pos(e);
      cv.focus();
      if (x < LABEL_W) return;
      cv.setPointerCapture(e.pointerId);
      drag = { x0: x, y0: y, start: this.view.start, end: this.view.end, moved: false, select: e.shiftKey, scroll: this.scroller.scrollTop };
      if (drag.select) this.selecting = { x0: x, x1: x };
    });
    cv.addEventListener("pointermove", (e) => {
      const { x, y } = pos(e);
      if (drag) {
        const dx = x - drag.x0;
        if (Math.abs(dx) > 3 || Math.abs(y - drag.y0) > 3) drag.moved = true;
        if (drag.select) {
          this.selecting.x1 = x;
          this.dirty = true;
        } else if (drag.moved) {
          cv.classList.add("dragging");
          const dt = (dx / this.plotW) * (drag.end - drag.start);
          this.setView(drag.start - dt, drag.end - dt);
          this.scroller.scrollTop = drag.scroll - (y - drag.y0);
        }
        this.tooltip.hidden = true;
        return;
      }
      const text = this.describe(this.hit(x, y));
      if (text) {
        this.tooltip.textContent = text;
        this.tooltip.hidden = false;
        const pane = this.scroller.parentElement.getBoundingClientRect();
        const r = cv.getBoundingClientRect();
        this.tooltip.style.left = `${Math.min(r.left - pane.left + x + 14, pane.width - 300)}px`;
        this.tooltip.style.top = `${r.top - pane.top + y + 14}px`;
      } else this.tooltip.hidden = true;
    });
    cv.addEventListener("pointerleave", () => (this.tooltip.hidden = true));
    const end = (e) => {
      if (!drag) return;
      const { x, y } = pos(e);
      cv.classList.remove("dragging");
      if (drag.select) {
        const [a, b] = [drag.x0, x].sort((p, q) => p - q);
        this.selecting = null;
        if (b - a > 4) this.setView(this.t(a), this.t(b));
        else this.dirty = true;
      } else if (!drag.moved) this.click(x, y);
      drag = null;
    };
    cv.addEventListener("pointerup", end);
    cv.addEventListener("pointercancel", end);
    cv.addEventListener("click", (e) => {
      const { x, y } = pos(e);
      if (x < LABEL_W) this.click(x, y);
    });
    // Keys work from the moment the page loads, wherever the focus is (but in a
    // text field or a menu).
    document.addEventListener("keydown", (e) => {
      // Not from a text field or a menu; and Space on a focused button, link or
      // summary works that control, as it should.
      const inside = (sel) => e.target.closest && e.target.closest(sel);
      if (inside("input, select, textarea, [contenteditable]")) return;
      if ((e.key === " " || e.key === "Enter") && inside("button, summary, a")) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const span = this.view.end - this.view.start;
      const handled = {
        " ": () => this.togglePause(),
        "+": () => this.zoom(0.7),
        "=": () => this.zoom(0.7),
        "-": () => this.zoom(1 / 0.7),
        "_": () => this.zoom(1 / 0.7),
        ArrowLeft: () => this.pan(-span * 0.15),
        ArrowRight: () => this.pan(span * 0.15),
        ArrowUp: () => (this.scroller.scrollTop -= ROW_H * 3),
        ArrowDown: () => (this.scroller.scrollTop += ROW_H * 3),
        "0": () => this.fitAll(),
        f: () => this.setFollow(!this.follow),
        F: () => this.setFollow(!this.follow),
        z: () => this.zoomToSelected(),
      }[e.key];
      if (handled) {
        e.preventDefault();
        handled();
      }
    });
  }

  click(x, y) {
    const h = this.hit(x, y);
    if (!h || !h.lane) return;
    if (h.lane.kind === "group") {
      if (this.collapsed.has(h.lane.key)) this.collapsed.delete(h.lane.key);
      else this.collapsed.add(h.lane.key);
      this.dirty = true;
      return;
    }
    if (h.lane.kind === "task") this.select(h.lane.id, h.interval && h.interval.state === "running" ? h.interval : null);
    else if (h.span && h.span.task != null) this.select(h.span.task);
  }

  /** Frame draw times (ms) of recent frames, for the benchmark. */
  stats() {
    return this.frameTimes.slice();
  }
}

/** A thread's name as lanes show it ("worker 1"), else "thread N". */
function threadName(model, thread) {
  const w = model.workers && model.workers.get(thread);
  return w ? `worker ${w.index}` : `thread ${thread}`;
}

export function describeSource(by, model) {
  const id = wakingTask(by);
  if (id != null) {
    const t = model && model.tasks.get(id);
    return `${t ? t.name : "task"} #${id}`;
  }
  return { timer: "the timer", io: "the I/O driver", blocking: "a blocking thread", external: "a thread outside the runtime" }[by] || by;
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + "…").width <= width) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + "…";
}

function hexAlpha(color, a) {
  if (color.startsWith("#") && color.length === 7) {
    const n = parseInt(color.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }
  return color;
}
