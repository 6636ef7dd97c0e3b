// The panels around the timeline: task table, details, warnings, the event-loop
// picture, the legend.

import { fmtDur, taskColor, SOURCE_COLORS, escapeHtml } from "./format.js";
import { describeSource } from "./timeline.js";

/** What a task's state reads as: a finished task by how it ended. */
function shownState(t) {
  return t.state === "done" && t.outcome ? t.outcome : t.state;
}

export class TaskTable {
  /** `now()`: the session's present, to count what goes on up to it. */
  constructor(table, filter, stateFilter, onSelect, now) {
    this.now = now;
    this.body = table.querySelector("tbody");
    this.heads = [...table.querySelectorAll("th")];
    this.filter = filter;
    this.stateFilter = stateFilter;
    this.sort = { key: "id", dir: 1 };
    this.selected = null;
    this.model = null;
    for (const th of this.heads) {
      th.tabIndex = 0;
      const sortBy = () => {
        const key = th.dataset.key;
        this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
        this.render();
      };
      th.addEventListener("click", sortBy);
      th.addEventListener("keydown", (e) => e.key === "Enter" && sortBy());
    }
    filter.addEventListener("input", () => this.render());
    stateFilter.addEventListener("change", () => this.render());
    this.body.addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (tr) onSelect(Number(tr.dataset.id));
    });
  }

  value(t, key, totals) {
    if (key === "wakes") return t.wakes ? Object.values(t.wakes).reduce((a, b) => a + b, 0) : 0;
    if (totals && key in totals) return totals[key];
    return t[key];
  }

  render() {
    const m = this.model;
    this.heads.forEach((th) => th.setAttribute("aria-sort", th.dataset.key === this.sort.key ? (this.sort.dir > 0 ? "ascending" : "descending") : "none"));
    if (!m) {
      this.body.innerHTML = "";
      return;
    }
    const q = this.filter.value.trim().toLowerCase();
    const st = this.stateFilter.value;
    const now = this.now();
    const named = (t) => t.name.toLowerCase().includes(q) || (t.context || "").toLowerCase().includes(q);
    // A finished task's state is how it ended (completed, cancelled, panicked);
    // "done" picks any of them.
    const inState = (t) => !st || t.state === st || (t.state === "done" && t.outcome === st);
    const rows = [...m.tasks.values()].filter((t) => (!q || named(t)) && inState(t));
    const totals = new Map(rows.map((t) => [t.id, m.totals(t, now)]));
    const { key, dir } = this.sort;
    rows.sort((a, b) => {
      const va = this.value(a, key, totals.get(a.id));
      const vb = this.value(b, key, totals.get(b.id));
      return (typeof va === "string" ? va.localeCompare(vb) : (va ?? 0) - (vb ?? 0)) * dir || a.id - b.id;
    });
    const html = rows
      .slice(0, 2000)
      .map(
        (t) => {
          const tt = totals.get(t.id);
          return `<tr data-id="${t.id}" aria-selected="${t.id === this.selected}" title="${escapeHtml(t.location || "")}">
<td>${t.id}</td><td><span class="swatch" style="background:${taskColor(t.id)}"></span> ${escapeHtml(t.name)}${t.context ? ` <span class="muted">· ${escapeHtml(t.context)}</span>` : ""}</td>
<td><span class="state state-${shownState(t)}">${shownState(t)}</span></td><td>${t.polls}</td><td>${fmtDur(tt.busy_ns)}</td>
<td>${fmtDur(tt.scheduled_ns)}</td><td>${fmtDur(tt.idle_ns)}</td><td>${this.value(t, "wakes")}</td><td>${t.warnings || ""}</td></tr>`;
        },
      )
      .join("");
    if (html !== this.lastHtml) {
      this.body.innerHTML = html;
      this.lastHtml = html;
    }
  }
}

export class Details {
  /** `onZoom(task)`: show the task's whole life in the timeline. */
  constructor(el, fetchTask, onZoom) {
    this.el = el;
    this.fetchTask = fetchTask;
    this.current = null;
    el.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-zoom]");
      if (b && onZoom) onZoom(Number(b.dataset.zoom));
    });
  }

  async show(model, sel) {
    if (!sel) {
      this.el.innerHTML = `<p class="muted">Click a task or a slice.</p>`;
      return;
    }
    const token = (this.current = {});
    const t = model.tasks.get(sel.task);
    if (!t) return;
    let detail = null;
    try {
      detail = await this.fetchTask(model.id, sel.task);
    } catch {
      detail = null;
    }
    if (this.current !== token) return;
    const d = detail || t;
    const wakes = d.wakes || {};
    const wakeRows = Object.entries(wakes)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `<span class="swatch" style="background:${SOURCE_COLORS[k] || SOURCE_COLORS.external}"></span> ${k} ${n}`)
      .join(" · ");
    let poll = "";
    if (sel.interval) {
      const iv = sel.interval;
      const before = model.allIntervals().find((i) => i.task === iv.task && i.state === "scheduled" && i.end_ns === iv.start_ns);
      poll = `<h3>Selected poll</h3><dl>
<dt>start</dt><dd>${fmtDur(iv.start_ns)}</dd><dt>duration</dt><dd>${fmtDur(iv.end_ns - iv.start_ns)}</dd>
<dt>returned</dt><dd>${iv.ready ? "Ready" : "Pending"}</dd>
${iv.context ? `<dt>doing</dt><dd data-testid="poll-context">${escapeHtml(iv.context)}</dd>` : ""}
<dt>woken by</dt><dd>${before && before.woken_by ? escapeHtml(describeSource(before.woken_by, model)) : "– (first poll or not in view)"}</dd></dl>`;
    }
    this.el.innerHTML = `<h3><span class="swatch" style="background:${taskColor(t.id)}"></span> ${escapeHtml(d.name)} <span class="muted">#${t.id}</span> <button type="button" class="small" data-zoom="${t.id}" title="Show its whole life in the timeline (Z)">Zoom to task</button></h3>
<dl>
<dt>spawned at</dt><dd>${escapeHtml(d.location || "–")}</dd>
${d.context ? `<dt>doing</dt><dd data-testid="context" title="the app's tracing span entered in its latest poll that had one">${escapeHtml(d.context)}</dd>` : ""}
<dt>state</dt><dd><span class="state state-${shownState(d)}">${shownState(d)}</span></dd>
<dt>polls</dt><dd>${d.polls}</dd>
<dt>busy</dt><dd>${fmtDur(d.busy_ns)}</dd>
<dt>scheduled</dt><dd>${fmtDur(d.scheduled_ns)}</dd>
<dt>idle</dt><dd>${fmtDur(d.idle_ns)}</dd>
<dt>longest poll</dt><dd>${fmtDur(d.longest_poll_ns)}</dd>
<dt>wakes</dt><dd data-testid="wakes">${wakeRows || "none"}</dd>
<dt>lifetime</dt><dd>${fmtDur(d.lifetime_ns)}</dd>
</dl>
<div class="muted">poll time</div>
<canvas class="hist" aria-label="Poll-time histogram"></canvas>
${poll}`;
    drawHistogram(this.el.querySelector("canvas"), d.poll_histogram || [], taskColor(t.id));
  }
}

/** The poll-time histogram: a bar per bucket with its count above it, a
 * baseline with the buckets' upper bounds under it, the largest count at the left. */
function drawHistogram(canvas, buckets, color) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const h = canvas.clientHeight || 90;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  const cs = getComputedStyle(document.documentElement);
  const muted = cs.getPropertyValue("--muted");
  const line = cs.getPropertyValue("--line");
  ctx.font = "10px system-ui";
  ctx.textBaseline = "alphabetic";
  if (!buckets.length) {
    ctx.fillStyle = muted;
    ctx.fillText("no polls yet", 4, h / 2);
    return;
  }
  const max = Math.max(...buckets.map((b) => b[1]));
  const axisW = Math.max(18, ctx.measureText(String(max)).width + 6);
  const top = 12;
  const base = h - 14;
  const bw = (w - axisW) / buckets.length;
  // The count axis: 0 and the largest count.
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.fillText(String(max), axisW - 4, top + 4);
  ctx.fillText("0", axisW - 4, base);
  ctx.strokeStyle = line;
  ctx.beginPath();
  ctx.moveTo(axisW, top);
  ctx.lineTo(axisW, base + 0.5);
  ctx.lineTo(w, base + 0.5);
  ctx.stroke();
  ctx.textAlign = "center";
  buckets.forEach(([, n], i) => {
    const bh = (n / max) * (base - top);
    const x = axisW + i * bw;
    ctx.fillStyle = color;
    ctx.fillRect(x + 1, base - bh, Math.max(bw - 2, 1), bh);
    // Its count, where it fits.
    const label = String(n);
    if (n && ctx.measureText(label).width <= bw + 2) {
      ctx.fillStyle = muted;
      ctx.fillText(label, x + bw / 2, base - bh - 2);
    }
  });
  // Upper bounds under the baseline: the first, the last, and one between.
  ctx.fillStyle = muted;
  const marks = [...new Set([0, Math.floor((buckets.length - 1) / 2), buckets.length - 1])];
  let freeFrom = axisW;
  for (const i of marks) {
    const text = `≤${fmtDur(buckets[i][0])}`;
    const tw = ctx.measureText(text).width;
    const cx = Math.min(Math.max(axisW + (i + 0.5) * bw, axisW + tw / 2), w - tw / 2);
    if (cx - tw / 2 < freeFrom) continue;
    ctx.fillText(text, cx, h - 2);
    freeFrom = cx + tw / 2 + 6;
  }
  ctx.textAlign = "left";
  canvas.dataset.max = String(max);
  canvas.dataset.buckets = String(buckets.length);
}

export class Warnings {
  constructor(list, count, onJump) {
    this.list = list;
    this.count = count;
    this.onJump = onJump;
    this.shown = null;
  }

  render(model) {
    const ws = model ? model.warnings : [];
    this.count.textContent = ws.length ? `(${ws.length})` : "";
    // Drawn again when one is added, counted again or withdrawn.
    const key = ws.map((w) => `${w.id}:${w.count}`).join(",");
    if (key === this.shown) return;
    this.shown = key;
    // What the user opened stays open.
    const open = new Set([...this.list.querySelectorAll("details[open]")].map((d) => d.dataset.id));
    this.list.innerHTML = ws.length ? "" : `<li class="muted">None so far.</li>`;
    for (const w of ws) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.innerHTML = `<span class="kind">${w.kind.replace(/_/g, " ")}</span> at ${fmtDur(w.at_ns)}${w.count > 1 ? ` (×${w.count})` : ""}<br>${escapeHtml(w.message)}`;
      b.addEventListener("click", () => this.onJump(w));
      li.append(b);
      // Why it matters and what to do, a click away.
      const more = document.createElement("details");
      more.dataset.id = String(w.id);
      if (open.has(String(w.id))) more.open = true;
      more.innerHTML = `<summary>why it matters · what to do</summary><p>${escapeHtml(w.why || "")}</p><p><strong>What to do:</strong> ${escapeHtml(w.fix || "")}</p>`;
      li.append(more);
      this.list.append(li);
    }
  }
}

/** The run queue, the workers and the idle tasks at a moment, as a picture. */
export class LoopView {
  constructor(el, atEl) {
    this.el = el;
    this.atEl = atEl;
    this.last = "";
  }

  render(model, t) {
    if (!model) return;
    const s = model.stateAt(t);
    const name = (id) => (model.tasks.get(id) || { name: `task ${id}` }).name;
    const chip = (id, cls = "") => `<span class="chip ${cls}" style="${cls ? "" : `background:${taskColor(id)}`}" title="#${id}">${escapeHtml(name(id))}</span>`;
    const workers = model.workerList();
    const running = new Map(s.running.map((i) => [i.thread, i.task]));
    // The scheduler's queues at that moment, when the app samples them.
    const q = model.queuesAt(t);
    const index = new Map([...model.workers.values()].map((w) => [w.thread, w.index]));
    const queued = (w) => {
      const i = index.get(w.thread);
      return q && i != null && q.local[i] != null ? ` <span class="muted" data-testid="queue">queue ${q.local[i]}</span>` : "";
    };
    const workerHtml = workers.length
      ? workers.map((w) => `<span class="worker-box">${escapeHtml(w.label)}: ${running.has(w.thread) ? chip(running.get(w.thread)) : '<span class="muted">parked / idle</span>'}${queued(w)}</span>`).join(" ")
      : s.running.map((i) => chip(i.task)).join(" ") || '<span class="muted">nothing</span>';
    const html = `<div class="row"><span class="label">running</span>${workerHtml}</div>
${q ? `<div class="row"><span class="label">injection queue</span><span data-testid="injection">${q.injection}</span></div>` : ""}
<div class="row"><span class="label">run queue →</span>${s.scheduled.map((i) => chip(i.task)).join(" ") || '<span class="muted">empty</span>'}</div>
<div class="row"><span class="label">waiting (idle)</span>${s.idle.slice(0, 40).map((i) => chip(i.task, "idle")).join(" ") || '<span class="muted">none</span>'}${s.idle.length > 40 ? ` <span class="muted">+${s.idle.length - 40}</span>` : ""}</div>`;
    this.atEl.textContent = `at ${fmtDur(t)}`;
    if (html !== this.last) {
      this.el.innerHTML = html;
      this.last = html;
    }
  }
}

export function renderLegend(el) {
  const sw = (bg, extra = "") => `<span class="swatch" style="background:${bg};${extra}"></span>`;
  el.innerHTML = [
    `<span>${sw("hsl(220 62% 50%)")} running: a poll (colour per task; dark end = returned Ready)</span>`,
    `<span>${sw("hsl(220 62% 78%)", "height:6px")} scheduled: woken, waiting for a worker</span>`,
    `<span>${sw("var(--idle)", "height:2px")} idle: returned Pending, not woken</span>`,
    `<span>${sw("var(--parked)")} worker parked</span>`,
    `<span>${sw(SOURCE_COLORS.timer, "height:2px")} wake by timer · ${sw(SOURCE_COLORS.io, "height:2px")} by I/O · ${sw(SOURCE_COLORS.task, "height:2px")} by a task · ${sw(SOURCE_COLORS.self, "height:2px")} by itself · ${sw(SOURCE_COLORS.external, "height:2px")} by a thread outside the runtime (from the axis, labelled): arrow from waker to next poll</span>`,
    `<span>○ timer armed · ● timer fired · <span style="color:${SOURCE_COLORS.io}">◆</span> I/O ready · ▸ spawned · | ended · ↲ polled on another thread than its last poll (stolen or moved)</span>`,
    `<span class="muted">wheel/± zoom · drag/←→ pan · shift-drag zoom to range · 0 fit all · F follow · Space pause · Z zoom to the selected task · the name filter dims other lanes</span>`,
  ].join("");
}
