// The teaching demos' recordings, one session each: what each demo teaches is
// visible in the page, and a screenshot of each timeline for docs/teaching.md.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { launch, openPage, until, tableRows } from "./browser.mjs";

const base = process.env.LOOPTRACE_DEMOS_URL;
const sessions = JSON.parse(process.env.LOOPTRACE_DEMO_SESSIONS || "{}");
const artifacts = process.env.LOOPTRACE_ARTIFACTS || "artifacts";
let browser;

before(async () => {
  assert.ok(base, "LOOPTRACE_DEMOS_URL names a collector holding the demos' recordings");
  browser = await launch();
  mkdirSync(artifacts, { recursive: true });
});
after(() => browser && browser.close());

/** Opens a demo's session (`?session=N`), waits for its tasks, fits the whole run. */
async function openDemo(name, tasks) {
  const id = sessions[name];
  assert.ok(id !== undefined, `a session for ${name}`);
  const { page, problems } = await openPage(browser, `${base}?session=${id}`);
  await until(page, (n) => document.querySelectorAll("#tasks tbody tr").length >= n, tasks, 15000);
  assert.equal(await page.inputValue("#session"), String(id), "the page shows the session the address asked for");
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(500);
  return { page, problems };
}

/** Selects a task in the table; its wakes by source, as the details show them. */
async function select(page, name) {
  await page.locator("#tasks tbody tr", { hasText: name }).first().click();
  await until(page, (n) => document.querySelector("#details h3")?.textContent.includes(n), name);
  return page.textContent('#details [data-testid="wakes"]');
}

async function finish(page, problems, name) {
  await page.screenshot({ path: `${artifacts}/demo-${name}.png` });
  assert.deepEqual(problems, []);
  await page.close();
}

/** The count shown for wakes of `kind` in a task's details. */
const count = (details, kind) => Number((details.match(new RegExp(`\\b${kind} (\\d+)`)) || [])[1] || 0);

const row = (rows, name) => rows.find((r) => r.name === name) || assert.fail(`no row ${name} in ${JSON.stringify(rows)}`);

test("sequential-vs-concurrent: one lane polled four times beside three overlapping lanes", async () => {
  const { page, problems } = await openDemo("sequential-vs-concurrent", 5);
  const rows = await tableRows(page);
  assert.equal(row(rows, "sequential").polls, 4);
  for (const n of ["Alice (concurrent)", "Bob (concurrent)", "Charlie (concurrent)"]) assert.equal(row(rows, n).polls, 2);
  await finish(page, problems, "sequential-vs-concurrent");
});

test("blocking: the blocking poll is a warning, and the heartbeat waited", async () => {
  const { page, problems } = await openDemo("blocking", 5);
  await until(page, () => [...document.querySelectorAll("#warnings button")].some((b) => /blocking poll/.test(b.textContent) && b.textContent.includes("std::thread::sleep")));
  const wakes = await select(page, "heartbeat 1");
  assert.ok(count(wakes, "external") >= 5, `heartbeat 1 is woken from outside the runtime: ${wakes}`);
  // The lesson the demo saved in its recording.
  assert.equal(await page.textContent("#note-title"), "blocking: what happened");
  assert.match(await page.textContent("#note"), /heartbeat 1 was woken on time but waited up to/);
  const marks = await page.evaluate(() => window.__looptrace.current.marks.map((m) => m.label));
  assert.deepEqual(marks, ["part 1: std::thread::sleep inside a task", "part 2: the fix"]);
  await select(page, "std::thread::sleep");
  // The one worker, and the blocking pool's thread that ran the fix's closure.
  const lanes = await page.evaluate(() => window.__looptrace.timeline.lanes.filter((l) => l.kind === "worker").map((l) => l.label));
  assert.equal(lanes[0], "worker 0");
  assert.ok(lanes.length === 2 && lanes[1].startsWith("blocking thread"), JSON.stringify(lanes));
  await finish(page, problems, "blocking");
});

test("blocking: a warning zooms to its poll, within the session", async () => {
  const { page, problems } = await openDemo("blocking", 5);
  const button = page.locator("#warnings button", { hasText: "blocking poll" }).first();
  await button.waitFor();
  await button.click();
  const s = await page.evaluate(() => {
    const { timeline: tl, current: m } = window.__looptrace;
    return { view: tl.view, mode: tl.mode, end: m.nowNs, w: m.warnings.find((w) => w.kind === "blocking_poll"), selected: tl.selected && tl.selected.task };
  });
  const [a, b] = [s.w.at_ns, s.w.at_ns + s.w.value];
  assert.ok(s.view.start <= a && b <= s.view.end, `the poll ${a}..${b} in view ${JSON.stringify(s.view)}`);
  assert.ok(s.view.start >= 0 && s.view.end <= s.end * 1.02, `within the session (0..${s.end}): ${JSON.stringify(s.view)}`);
  assert.ok(s.view.end - s.view.start < (b - a) * 2, "zoomed to the poll, not around it");
  assert.equal(s.mode, "free");
  assert.equal(s.selected, s.w.task);
  assert.deepEqual(problems, []);
  await page.close();
});

test("at 1280x720 the lesson, the details and the warnings are all in view", async () => {
  const id = sessions.blocking;
  const { page, problems } = await openPage(browser, `${base}?session=${id}`, { width: 1280, height: 720 });
  await until(page, () => document.querySelectorAll("#warnings button").length > 0 && document.querySelectorAll("#tasks tbody tr").length >= 5, null, 15000);
  await page.locator("#tasks tbody tr", { hasText: "std::thread::sleep" }).first().click();
  await until(page, () => document.querySelector("#details h3")?.textContent.includes("std::thread::sleep"));
  for (const sel of ["#note-card", ".details-card", ".warnings-card", "#warnings button", "#details h3", "#note-title", "#tasks tbody tr"]) {
    const box = await page.locator(sel).first().boundingBox();
    assert.ok(box && box.y >= 0 && box.y + Math.min(box.height, 24) <= 720 && box.x + 20 <= 1280, `${sel} in view: ${JSON.stringify(box)}`);
  }
  await page.screenshot({ path: `${artifacts}/demo-blocking-1280x720.png` });
  assert.deepEqual(problems, []);
  await page.close();
});

test("cpu-yield: greedy tasks poll once, polite ones take turns", async () => {
  const { page, problems } = await openDemo("cpu-yield", 4);
  const rows = await tableRows(page);
  assert.equal(row(rows, "greedy A").polls, 1);
  assert.equal(row(rows, "greedy B").polls, 1);
  assert.ok(row(rows, "polite A").polls > 10);
  const wakes = await select(page, "polite A");
  assert.ok(count(wakes, "self") >= 10, `yield_now is a self-wake: ${wakes}`);
  await finish(page, problems, "cpu-yield");
});

test("producer-consumer: the consumer wakes the producer", async () => {
  const { page, problems } = await openDemo("producer-consumer", 2);
  const wakes = await select(page, "producer");
  assert.ok(count(wakes, "task") >= 5, `woken by another task several times: ${wakes}`);
  await finish(page, problems, "producer-consumer");
});

test("work-stealing: lanes for both workers, both busy; the spawner's queue fills and the other worker steals", async () => {
  const { page, problems } = await openDemo("work-stealing", 9);
  const workers = await page.evaluate(() => window.__looptrace.timeline.lanes.filter((l) => l.kind === "worker").map((l) => l.label));
  assert.deepEqual(workers, ["worker 0", "worker 1"]);
  // The queues, sampled: some worker's queue held several jobs, and a worker stole.
  const q = await page.evaluate(() => {
    const m = window.__looptrace.current;
    const samples = m.allQueues();
    const deepest = Math.max(0, ...samples.flatMap((s) => s.local));
    const at = samples.find((s) => Math.max(...s.local) === deepest);
    const stats = [...m.workers.values()].map((w) => ({ max: w.max_queue_depth, steals: w.steals }));
    return { n: samples.length, deepest, at: at && at.at_ns, stats };
  });
  assert.ok(q.n > 0 && q.deepest >= 2, `queue samples: ${JSON.stringify(q)}`);
  assert.ok(q.stats.some((w) => w.steals > 0), `a worker stole: ${JSON.stringify(q)}`);
  // The event-loop panel at that moment counts each worker's queue.
  await page.evaluate((t) => window.__looptrace.timeline.select(null) || window.__looptrace.timeline.jumpTo(t), q.at);
  await page.waitForTimeout(300);
  const shown = await page.evaluate(() => [...document.querySelectorAll('#loop [data-testid="queue"]')].map((e) => e.textContent));
  assert.equal(shown.length, 2, `each worker's queue in the event-loop panel: ${shown}`);
  // Jobs stolen by the other worker are marked where their poll starts, and
  // the poll's tooltip says where it came from.
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(300);
  const move = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const shown = tl.shownMoves || [];
    const mv = shown[0];
    if (!mv) return { n: 0 };
    const m = window.__looptrace.current;
    const iv = m.allIntervals().find((i) => i.task === mv.task && i.start_ns === mv.at_ns && i.state === "running");
    // Zoom onto that poll so it is wide enough to hover.
    tl.setView(iv.start_ns - (iv.end_ns - iv.start_ns), iv.end_ns + (iv.end_ns - iv.start_ns));
    return { n: shown.length, task: mv.task, at: mv.at_ns, from: mv.from, to: mv.to };
  });
  assert.ok(move.n > 0 && move.from !== move.to, `polls marked as moved between workers: ${JSON.stringify(move)}`);
  await page.waitForTimeout(300);
  const spot = await page.evaluate((mv) => {
    const tl = window.__looptrace.timeline;
    const lane = tl.lanes.findIndex((l) => (l.kind === "task" && l.id === mv.task) || (l.kind === "group" && l.collapsed && l.members.includes(mv.task)));
    tl.scroller.scrollTop = Math.max(0, tl.laneY(lane) - 200);
    return { lane };
  }, move);
  await page.waitForTimeout(300);
  const at = await page.evaluate((mv) => {
    const tl = window.__looptrace.timeline;
    const m = window.__looptrace.current;
    const iv = m.allIntervals().find((i) => i.task === mv.task && i.start_ns === mv.at && i.state === "running");
    const lane = tl.lanes.findIndex((l) => (l.kind === "task" && l.id === mv.task) || (l.kind === "group" && l.collapsed && l.members.includes(mv.task)));
    return { x: tl.x((iv.start_ns + iv.end_ns) / 2), y: tl.laneY(lane) + 11 };
  }, move);
  assert.ok(spot.lane >= 0, "the moved task has a lane");
  const box = await page.locator("#timeline").boundingBox();
  await page.mouse.move(box.x + at.x, box.y + at.y);
  await until(page, () => /moved: its last poll ran on worker \d, this one on worker \d/.test(document.getElementById("tooltip").textContent));
  // Zoomed out past full detail (asked for at most 50 intervals here), the
  // queues are still drawn, from the aggregate's buckets.
  await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    tl.maxIntervals = 50;
    tl.fitAll();
  });
  await until(page, () => window.__looptrace.current.win?.detail === "aggregate" && window.__looptrace.timeline.queueBucketsDrawn > 0);
  await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    tl.maxIntervals = undefined;
    tl.fitAll();
  });
  await finish(page, problems, "work-stealing");
});

test("lost-waker: the warning names the forgetful task", async () => {
  const { page, problems } = await openDemo("lost-waker", 2);
  await until(page, () => [...document.querySelectorAll("#warnings button")].some((b) => /lost waker/.test(b.textContent) && b.textContent.includes("forgetful")));
  const rows = await tableRows(page);
  assert.equal(row(rows, "forgetful").polls, 1);
  await page.locator("#warnings button", { hasText: "lost waker" }).first().click();
  await until(page, () => document.querySelector("#details h3")?.textContent.includes("forgetful"));
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(300);
  await finish(page, problems, "lost-waker");
});

// ---- controls, as a user meets them

/** The colour at canvas point (x, y) in CSS pixels. */
const pixel = (page, x, y) =>
  page.evaluate(
    ({ x, y }) => {
      const tl = window.__looptrace.timeline;
      const dpr = window.devicePixelRatio || 1;
      return [...tl.ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data].slice(0, 3);
    },
    { x, y },
  );
const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
const distance = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

test("blocking at 1280x720: distinct colours for the lanes in view, gaps between polls, marks above the ticks", async () => {
  const id = sessions.blocking;
  const { page, problems } = await openPage(browser, `${base}?session=${id}`, { width: 1280, height: 720 });
  await until(page, () => document.querySelectorAll("#tasks tbody tr").length >= 5, null, 15000);
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(400);
  const colours = await page.evaluate(() => {
    const { timeline: tl, taskColor } = window.__looptrace;
    const ids = tl.lanes.filter((l) => l.kind === "task").map((l) => l.id);
    return ids.slice(0, 12).map((id) => taskColor(id));
  });
  assert.ok(colours.length >= 5);
  assert.equal(new Set(colours).size, colours.length, `distinct: ${colours}`);
  // A poll (not a task's first: the spawn's marker is drawn there), zoomed to a
  // width of 100 px, starts with a one-pixel gap in the background's colour.
  await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const m = window.__looptrace.current;
    const later = m.allIntervals().find((i) => i.state === "running" && i.start_ns - (m.tasks.get(i.task) || {}).spawned_ns > 1e6 && i.end_ns > i.start_ns);
    const d = later.end_ns - later.start_ns;
    tl.setView(later.start_ns - d, later.start_ns + (tl.plotW / 100) * d - d);
    window.__probe = later;
  });
  await page.waitForTimeout(500);
  const gap = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const iv = window.__probe;
    const lane = tl.lanes.findIndex((l) => l.kind === "task" && l.id === iv.task);
    tl.scroller.scrollTop = 0;
    tl.draw();
    // Below the middle, where a wake arrow ends, above a warning's underline.
    return { x: Math.round(tl.x(iv.start_ns)), y: tl.laneY(lane) + 15, bg: tl.colors.bg, iv, x0: tl.x(iv.start_ns), x1: tl.x(iv.end_ns) };
  });
  const at = await pixel(page, gap.x, gap.y);
  assert.ok(distance(at, hex(gap.bg)) <= 24, `the gap at a poll's start: ${at} at ${JSON.stringify(gap)}`);
  assert.ok(distance(await pixel(page, gap.x + 4, gap.y), hex(gap.bg)) > 24, "the poll after it");
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(400);
  // Marks' labels on the axis's upper row, the ticks' on the lower: no tick label
  // has the marks' colour in it.
  const axis = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    return {
      ticks: (tl.axisTicks || []).map((t) => tl.x(t)).filter((x) => x > 200),
      marks: tl.shownMarks.map((m) => tl.x(m.at_ns)),
      accent: tl.colors.accent,
    };
  });
  assert.ok(axis.marks.length >= 1 && axis.ticks.length >= 3, JSON.stringify(axis));
  for (const x of axis.ticks) {
    for (let dx = 4; dx < 40; dx += 3) {
      if (axis.marks.some((m) => Math.abs(m - (x + dx)) < 3)) continue;
      for (const y of [24, 28, 32]) {
        assert.ok(distance(await pixel(page, x + dx, y), hex(axis.accent)) > 40, `a mark's label over the tick at ${x}`);
      }
    }
  }
  await page.screenshot({ path: `${artifacts}/blocking-1280x720-controls.png` });
  assert.deepEqual(problems, []);
  await page.close();
});

test("tooltips and selections follow the view; time as precise as the zoom; empty space selects no poll; Z zooms to the task", async () => {
  const { page, problems } = await openDemo("blocking", 5);
  const box = await page.locator("#timeline").boundingBox();
  // The std::thread::sleep poll: hover it, then zoom: the tooltip goes.
  const poll = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const m = window.__looptrace.current;
    const t = [...m.tasks.values()].find((t) => t.name.startsWith("std::thread::sleep"));
    const iv = m.allIntervals().find((i) => i.task === t.id && i.state === "running" && i.end_ns - i.start_ns > 5e8);
    const lane = tl.lanes.findIndex((l) => l.kind === "task" && l.id === t.id);
    tl.scroller.scrollTop = 0;
    return { task: t.id, iv, x: tl.x((iv.start_ns + iv.end_ns) / 2), y: tl.laneY(lane) + 11 };
  });
  await page.mouse.move(box.x + poll.x, box.y + poll.y);
  await until(page, () => !document.getElementById("tooltip").hidden);
  await page.keyboard.press("+");
  assert.equal(await page.evaluate(() => document.getElementById("tooltip").hidden), true, "zooming hides the stale tooltip");
  // Select the poll, then pan it out of view: the poll is no longer selected.
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.mouse.click(box.x + poll.x, box.y + poll.y);
  await until(page, () => window.__looptrace.timeline.selected?.interval != null);
  await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    tl.pan((tl.view.end - tl.view.start) * 3);
  });
  const after = await page.evaluate(() => window.__looptrace.timeline.selected);
  assert.equal(after.task, poll.task, "the task stays selected");
  assert.equal(after.interval, null, "the poll out of view does not");
  // At microsecond zoom the tooltip's times have the digits to tell them apart.
  const at = await page.evaluate((iv) => {
    const tl = window.__looptrace.timeline;
    tl.setView(iv.start_ns - 20_000, iv.start_ns + 80_000);
    return tl.describe({ interval: iv });
  }, poll.iv);
  assert.match(at, /from \d+\.\d{4,} ms/, at);
  assert.match(at, /running for \d+\.\d{6,} s/, at);
  // A click where nothing is drawn (before the task was spawned) selects the task, no poll.
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  const empty = await page.evaluate((task) => {
    const tl = window.__looptrace.timeline;
    const lane = tl.lanes.findIndex((l) => l.kind === "task" && l.id === task);
    return { x: tl.x(1_000_000), y: tl.laneY(lane) + 11 };
  }, poll.task);
  await page.mouse.click(box.x + empty.x, box.y + empty.y);
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.__looptrace.timeline.selected?.interval ?? null), null);
  // Z: the selected task's whole life, within the session.
  await page.keyboard.press("z");
  const v = await page.evaluate((task) => {
    const tl = window.__looptrace.timeline;
    const t = window.__looptrace.current.tasks.get(task);
    return { view: tl.view, spawned: t.spawned_ns, ended: t.ended_ns, now: tl.now() };
  }, poll.task);
  assert.ok(v.view.start <= v.spawned && v.view.end >= v.ended && v.view.end <= v.now * 1.02, JSON.stringify(v));
  assert.deepEqual(problems, []);
  await page.close();
});

test("the name filter dims the other lanes; the theme button forces light or dark; the histogram has counts and an axis", async () => {
  const { page, problems } = await openDemo("blocking", 5);
  const swatch = () =>
    page.evaluate(() => {
      const tl = window.__looptrace.timeline;
      tl.scroller.scrollTop = 0;
      const i = tl.lanes.findIndex((l) => l.kind === "task" && l.label.startsWith("std::thread"));
      const j = tl.lanes.findIndex((l) => l.kind === "task" && l.label.startsWith("heartbeat"));
      return { other: { x: 6, y: tl.laneY(i) + 11 }, match: { x: 6, y: tl.laneY(j) + 11 }, bg: tl.colors.bg };
    });
  let s = await swatch();
  const before = await pixel(page, s.other.x, s.other.y);
  assert.ok(distance(before, hex(s.bg)) > 60, "a lane's colour mark");
  await page.fill("#filter", "heartbeat");
  await page.waitForTimeout(200);
  s = await swatch();
  assert.ok(distance(await pixel(page, s.other.x, s.other.y), hex(s.bg)) < distance(before, hex(s.bg)) / 2, "dimmed");
  assert.ok(distance(await pixel(page, s.match.x, s.match.y), hex(s.bg)) > 60, "the match is not");
  await page.fill("#filter", "");

  // The theme: dark on a dark system, light when asked, kept across a reload.
  await page.emulateMedia({ colorScheme: "dark" });
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const dark = await bg();
  await page.click("#theme");
  assert.equal(await page.textContent("#theme"), "Theme: light");
  assert.equal(await bg(), "rgb(255, 255, 255)");
  assert.equal(await page.evaluate(() => window.__looptrace.timeline.colors.bg), "#ffffff", "the canvas follows");
  await page.reload();
  await until(page, () => document.getElementById("theme").textContent === "Theme: light");
  assert.equal(await bg(), "rgb(255, 255, 255)");
  await page.click("#theme");
  assert.equal(await bg(), dark);
  await page.click("#theme");
  assert.equal(await page.textContent("#theme"), "Theme: auto");

  // The poll-time histogram of the heartbeat: the largest count on its axis.
  await until(page, () => document.querySelectorAll("#tasks tbody tr").length >= 5, null, 15000);
  await select(page, "heartbeat 1");
  await until(page, () => document.querySelector("#details canvas.hist")?.dataset.max != null);
  const hist = await page.evaluate(async () => {
    const m = window.__looptrace.current;
    const t = [...m.tasks.values()].find((t) => t.name === "heartbeat 1");
    const d = await (await fetch(`/api/sessions/${m.id}/tasks/${t.id}`)).json();
    const c = document.querySelector("#details canvas.hist");
    return { max: Math.max(...d.poll_histogram.map((b) => b[1])), buckets: d.poll_histogram.length, shown: c.dataset };
  });
  assert.equal(Number(hist.shown.max), hist.max);
  assert.equal(Number(hist.shown.buckets), hist.buckets);
  assert.deepEqual(problems, []);
  await page.close();
});

test("lost-waker: a wake from a thread outside the runtime is drawn from the axis, labelled, not from a worker", async () => {
  const { page, problems } = await openDemo("lost-waker", 2);
  const arrows = await page.evaluate(() => window.__looptrace.timeline.arrowsDrawn);
  const external = arrows.filter((a) => a.kind === "external");
  assert.ok(external.length >= 1, JSON.stringify(arrows));
  for (const a of external) assert.ok(a.outside && a.from == null, JSON.stringify(a));
  for (const a of arrows.filter((a) => a.kind === "timer" || a.kind === "io")) assert.equal(a.from?.kind, "worker");
  assert.deepEqual(problems, []);
  await page.close();
});

test("warnings say why and what to do, are flagged on their lanes, and a cancelled task reads cancelled", async () => {
  const { page, problems } = await openDemo("blocking", 5);
  const list = await page.evaluate(() => [...document.querySelectorAll("#warnings li")].map((li) => li.textContent));
  assert.ok(list.length >= 1);
  for (const text of list) assert.match(text, /why it matters · what to do.*What to do:/s, text);
  // The flag on the blocker's lane, explained on hover.
  const flag = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const f = tl.shownWarnings[0];
    return f && { x: f.x, y: tl.laneY(f.lane) + 3, kind: f.w.kind };
  });
  assert.equal(flag.kind, "blocking_poll");
  const box = await page.locator("#timeline").boundingBox();
  await page.mouse.move(box.x + flag.x, box.y + flag.y);
  await until(page, () => !document.getElementById("tooltip").hidden && document.getElementById("tooltip").textContent.includes("blocking poll"));
  assert.match(await page.textContent("#tooltip"), /What to do: Move blocking/);
  assert.deepEqual(problems, []);
  await page.close();

  // lost-waker: the forgetful task, aborted, ended cancelled, and the filter finds it.
  const t = await openDemo("lost-waker", 2);
  await t.page.selectOption("#state-filter", "cancelled");
  await t.page.waitForTimeout(200);
  const rows = await tableRows(t.page);
  assert.ok(rows.length >= 1 && rows.every((r) => r.state === "cancelled"), JSON.stringify(rows));
  assert.deepEqual(t.problems, []);
  await t.page.close();
});
