// Formatting of times and durations, axis ticks, and colours.

/** A duration in ns, with a unit that suits it (ns to minutes). */
export function fmtDur(ns) {
  if (ns == null || !isFinite(ns)) return "–";
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${trim(ns / 1e3)} µs`;
  if (a < 1e9) return `${trim(ns / 1e6)} ms`;
  if (a < 60e9) return `${trim(ns / 1e9)} s`;
  const m = Math.floor(ns / 60e9);
  return `${m} min ${trim((ns - m * 60e9) / 1e9)} s`;
}

/** A duration as precise as `step` ns (a pixel of the view) calls for: a
 * 1.000004 s poll reads `1.000004 s` at microsecond zoom, `1.00 s` zoomed out. */
export function fmtDurAt(ns, step) {
  if (ns == null || !isFinite(ns)) return "–";
  const a = Math.abs(ns);
  const unit = a < 1e3 ? 1 : a < 1e6 ? 1e3 : a < 1e9 ? 1e6 : a < 60e9 ? 1e9 : 0;
  if (!unit || !step || step >= unit / 100) return fmtDur(ns);
  const name = { 1: "ns", 1e3: "µs", 1e6: "ms", 1e9: "s" }[unit];
  const digits = Math.min(9, Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9)));
  return `${(ns / unit).toFixed(digits)} ${name}`;
}

function trim(x) {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** Ticks for an axis spanning [start, end] ns with about `count` ticks. */
export function ticks(start, end, count) {
  const span = Math.max(end - start, 1);
  const raw = span / Math.max(count, 1);
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) || 10 * pow;
  const out = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) out.push(t);
  return { step, ticks: out };
}

/** A moment written to the precision `step` (ns) calls for: `1.00134 s`, `250 ms`. */
export function fmtTick(t, step) {
  const digits = (unit) => Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
  if (t >= 60e9 && step >= 1e9) return fmtDur(t);
  if (t >= 1e9 || step >= 1e9) return `${(t / 1e9).toFixed(digits(1e9))} s`;
  if (t >= 1e6 || step >= 1e6) return `${(t / 1e6).toFixed(digits(1e6))} ms`;
  if (t >= 1e3 || step >= 1e3) return `${(t / 1e3).toFixed(digits(1e3))} µs`;
  return `${t} ns`;
}

// Twelve hues in an order that keeps neighbours far apart on the wheel.
const HUES = [215, 25, 135, 295, 50, 175, 345, 95, 255, 5, 195, 75];
/** Palette slot per task, given by the timeline in lane order: any twelve lanes
 * next to each other have twelve different colours. */
const slots = new Map();

/** Gives the tasks in `ids` (lane order) their colours. */
export function assignColors(ids) {
  slots.clear();
  ids.forEach((id, i) => slots.set(id, i % HUES.length));
}

/** A task's colour (`light`: lightness, for its scheduled stretches). */
export function taskColor(id, light = 48) {
  const slot = slots.get(id) ?? Math.floor(((id * 0.618033988749895) % 1) * HUES.length);
  return `hsl(${HUES[slot]} 68% ${light}%)`;
}

/** Colours of wake sources. */
export const SOURCE_COLORS = {
  task: "#8b5cf6",
  self: "#a78bfa",
  timer: "#f59e0b",
  io: "#0ea5e9",
  blocking: "#a16207",
  external: "#64748b",
};

/** The waking task of a wake source (`task:3` -> 3), else null: the one place
 * the page reads the protocol's spelling of a wake source. */
export function wakingTask(by) {
  return by && by.startsWith("task:") ? Number(by.slice(5)) : null;
}

/** The kind of a wake source of `task` (`task:3` -> `task`, or `self`). */
export function sourceKind(by, task) {
  const from = wakingTask(by);
  if (from != null) return from === task ? "self" : "task";
  return by || "external";
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** The stretch of time a warning is about: the offending poll or wait, else its moment. */
export function warningStretch(w) {
  const v = w.value || 0;
  switch (w.kind) {
    case "blocking_poll":
    case "never_yields":
      return [w.at_ns, w.at_ns + v];
    case "scheduling_latency":
      return [Math.max(0, w.at_ns - v), w.at_ns];
    default:
      return [w.at_ns, w.at_ns];
  }
}
