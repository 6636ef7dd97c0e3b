// The page: connects to the collector, keeps a model per session, wires the
// timeline and the panels.

import { Connection } from "./conn.js";
import { SessionModel } from "./store.js";
import { Timeline } from "./timeline.js";
import { TaskTable, Details, Warnings, LoopView, renderLegend } from "./panels.js";
import { taskColor, warningStretch } from "./format.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");
const withToken = (path) => (token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path);
const wsUrl = withToken(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/view`);

const conn = new Connection(wsUrl);
const models = new Map();
let current = null;
let replay = null;

const timeline = new Timeline({ canvas: $("timeline"), scroller: $("scroller"), spacer: $("spacer"), tooltip: $("tooltip"), range: $("range") });
timeline.conn = conn;
const table = new TaskTable($("tasks"), $("filter"), $("state-filter"), (id) => timeline.select(id), () => timeline.now());
const details = new Details($("details"), async (session, task) => {
  const r = await fetch(withToken(`/api/sessions/${session}/tasks/${task}`));
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.json();
}, (task) => {
  timeline.select(task);
  timeline.zoomToSelected();
});
const warnings = new Warnings($("warnings"), $("warning-count"), (w) => {
  // Zoom to what it is about (within the session), and select its task.
  const [start, end] = warningStretch(w);
  timeline.zoomTo(start, end);
  if (w.task != null) timeline.select(w.task);
});
const loopView = new LoopView($("loop"), $("loop-at"));
renderLegend($("legend"));

// The theme: the system's (auto), or light or dark as the user says; kept.
const THEMES = ["auto", "light", "dark"];
function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("theme").textContent = `Theme: ${theme}`;
  timeline.readColors();
  timeline.dirty = true;
}
function storedTheme() {
  try {
    const t = localStorage.getItem("looptrace-theme");
    return THEMES.includes(t) ? t : "auto";
  } catch {
    return "auto"; // storage refused (a private window)
  }
}
let theme = storedTheme();
applyTheme(theme);
$("theme").addEventListener("click", () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  try {
    localStorage.setItem("looptrace-theme", theme);
  } catch {
    // Storage refused (a private window): the choice lasts this page.
  }
  applyTheme(theme);
});
// The name filter dims the other lanes of the timeline too.
$("filter").addEventListener("input", () => timeline.setFilter($("filter").value));

function setPressed(el, on) {
  el.setAttribute("aria-pressed", on ? "true" : "false");
}

timeline.addEventListener("mode", (e) => {
  setPressed($("follow"), e.detail === "follow");
  setPressed($("freeze"), e.detail === "paused");
  $("freeze").textContent = e.detail === "paused" ? "Resume view" : "Pause view";
});
timeline.addEventListener("select", (e) => {
  table.selected = e.detail ? e.detail.task : null;
  table.render();
  details.show(current, e.detail);
});

$("follow").addEventListener("click", () => timeline.setFollow(!timeline.follow));
$("freeze").addEventListener("click", () => timeline.togglePause());
$("fit").addEventListener("click", () => timeline.fitAll());
$("zoomin").addEventListener("click", () => timeline.zoom(0.6));
$("zoomout").addEventListener("click", () => timeline.zoom(1 / 0.6));
$("play").addEventListener("click", () => conn.replay(replay && replay.paused ? "play" : "pause"));
$("speed").addEventListener("change", (e) => conn.replay("speed", Number(e.target.value)));
$("session").addEventListener("change", (e) => choose(Number(e.target.value)));

function showReplay(r) {
  replay = r;
  $("replay").hidden = !r;
  if (r) {
    $("play").textContent = r.paused ? "Play" : "Pause";
    $("speed").value = String(r.speed);
    if (![...$("speed").options].some((o) => o.value === String(r.speed))) {
      $("speed").add(new Option(`${r.speed}×`, String(r.speed), true, true));
    }
  }
  timeline.advancing = !!current && current.info.live && !(r && r.paused);
}

/** The session's note (a demo's lesson): shown, and opened again whenever it changes. */
function showNote(note) {
  const card = $("note-card");
  card.hidden = !note;
  if (!note) return;
  const key = `${note.title}\n${note.text}`;
  if (card.dataset.key === key) return;
  card.dataset.key = key;
  $("note-title").textContent = note.title;
  const box = $("note");
  // Paragraphs per line; `backticked` words as code.
  box.replaceChildren(
    ...note.text
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => {
        const p = document.createElement("p");
        l.split("`").forEach((part, i) => p.append(i % 2 ? Object.assign(document.createElement("code"), { textContent: part }) : part));
        return p;
      }),
  );
  $("note-box").open = true;
}

function renderSessions(list) {
  const sel = $("session");
  const prev = sel.value;
  sel.innerHTML = "";
  for (const s of list) {
    const label = `${s.process} (pid ${s.pid}) · ${s.flavor}${s.live ? " · live" : ""}${s.source === "replay" ? " · replay" : ""}`;
    sel.add(new Option(label, String(s.id)));
  }
  if (prev && list.some((s) => String(s.id) === prev)) sel.value = prev;
}

async function loadSession(m) {
  const [tasks, warns, stats, marks] = await Promise.all([
    fetch(withToken(`/api/sessions/${m.id}/tasks`)).then((r) => r.json()),
    fetch(withToken(`/api/sessions/${m.id}/warnings`)).then((r) => r.json()),
    fetch(withToken(`/api/sessions/${m.id}/stats`)).then((r) => r.json()),
    fetch(withToken(`/api/sessions/${m.id}/marks`)).then((r) => r.json()),
  ]);
  m.addMarks(marks.marks);
  for (const t of tasks.tasks || []) m.upsertTask(t);
  m.addWarnings(warns.warnings);
  // Which threads are workers (the rest that run something are the blocking pool's).
  m.applyStats(stats);
  m.version++;
}

/** What the line beside the session picker says: a coarse source, and what the collector's memory budget took. */
function infoLine(info) {
  const parts = [];
  if (info.capture && info.capture !== "native") parts.push(info.capture);
  const g = info.given_up || {};
  const n = (x) => Number(x).toLocaleString("en-US");
  const bits = [];
  if (info.evicted_events > 0) bits.push(`the oldest ${n(info.evicted_events)} events evicted`);
  if (g.finished_tasks > 0) bits.push(`${n(g.finished_tasks)} finished tasks forgotten`);
  if (g.histograms > 0) bits.push(`histograms of ${n(g.histograms)} idle tasks dropped`);
  if (g.folded_tasks > 0) bits.push(`${n(g.folded_tasks)} idle tasks folded by spawn location`);
  if (bits.length) parts.push(`Memory budget reached: ${bits.join("; ")}.`);
  return parts.join(" · ");
}

async function choose(id) {
  const m = models.get(id);
  if (!m) return;
  current = m;
  $("session").value = String(id);
  showNote(m.info.note);
  $("capture").textContent = infoLine(m.info);
  conn.subscribe(id);
  table.model = m;
  timeline.setModel(m);
  showReplay(replay);
  await loadSession(m).catch(() => {});
  table.render();
}

conn.addEventListener("status", (e) => {
  const b = $("banner");
  if (e.detail.connected) {
    b.hidden = true;
    if (current) loadSession(current).catch(() => {});
    timeline.requestWindow(0);
  } else {
    b.hidden = false;
    b.textContent = `Lost the connection to the collector; reconnecting in ${(e.detail.retryMs / 1000).toFixed(1)} s…`;
  }
});

conn.addEventListener("message", (e) => {
  const msg = e.detail;
  switch (msg.type) {
    case "sessions": {
      for (const s of msg.sessions) {
        if (models.has(s.id)) models.get(s.id).setInfo(s);
        else models.set(s.id, new SessionModel(s));
      }
      renderSessions(msg.sessions);
      if ("replay" in msg) showReplay(msg.replay);
      if (!current && msg.sessions.length) {
        // The one the address asks for (?session=N), else the newest live session, else the newest.
        const asked = msg.sessions.find((s) => String(s.id) === params.get("session"));
        const pick = asked || [...msg.sessions].reverse().find((s) => s.live) || msg.sessions[msg.sessions.length - 1];
        choose(pick.id);
      } else if (current) {
        timeline.advancing = current.info.live && !(replay && replay.paused);
        $("capture").textContent = infoLine(current.info);
      }
      showNote(current && current.info.note);
      break;
    }
    case "batch": {
      const m = models.get(msg.session);
      if (m) m.applyBatch(msg);
      if (m === current) scheduleRender();
      break;
    }
    case "stats": {
      const m = models.get(msg.session);
      if (m) m.applyStats(msg);
      break;
    }
    case "replay":
      showReplay(msg.replay);
      break;
    case "lagged":
      // We fell behind: the next window query fills the gap.
      timeline.requestWindow(0);
      break;
  }
});

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    table.render();
    warnings.render(current);
  }, 100);
}

// The event-loop picture follows the right edge of the view (the present when
// following), or the time under the pointer.
let hoverT = null;
$("timeline").addEventListener("pointermove", (e) => {
  const r = e.target.getBoundingClientRect();
  const x = e.clientX - r.left;
  hoverT = x > 190 ? timeline.t(x) : null;
});
$("timeline").addEventListener("pointerleave", () => (hoverT = null));
let ticks = 0;
setInterval(() => {
  if (!current) return;
  const t = hoverT ?? Math.min(timeline.view.end, timeline.now());
  loopView.render(current, t);
  warnings.render(current);
  // What goes on counts up to now: idle tasks' idle time grows without news.
  if (++ticks % 4 === 0 && !timeline.frozen) table.render();
}, 120);

// For tests and the benchmark.
window.__looptrace = { timeline, models, conn, taskColor, get current() { return current; } };
