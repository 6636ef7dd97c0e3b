// A live session: new tasks appear fast, follow-live, pan, zoom, warnings.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, until } from "./browser.mjs";
import { seen } from "./protocol.mjs";

const url = process.env.LOOPTRACE_LIVE_URL;
let browser;

before(async () => {
  assert.ok(url, "LOOPTRACE_LIVE_URL names a collector with a live session spawning tasks");
  browser = await launch();
});
after(() => browser && browser.close());

test("a newly spawned task appears within one second", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => window.__looptrace.current && window.__looptrace.current.tasks.size > 0, null, 10000);
  const seen = new Map();
  let existing = null; // tasks already listed when we started looking do not count
  const deadline = Date.now() + 4000;
  while (Date.now() < deadline && seen.size < 4) {
    const rows = await page.evaluate(() => {
      const m = window.__looptrace.current;
      const names = [...document.querySelectorAll("#tasks tbody tr")].map((tr) => tr.cells[1].textContent.trim());
      return names.map((n) => {
        const t = [...m.tasks.values()].find((t) => t.name === n);
        return { name: n, spawnedWallMs: (m.info.clock_origin_unix_ns + t.spawned_ns) / 1e6 };
      });
    });
    const now = Date.now();
    if (!existing) {
      existing = new Set(rows.map((r) => r.name));
      continue;
    }
    for (const r of rows) {
      if (!existing.has(r.name) && !seen.has(r.name) && r.name.startsWith("tick-")) seen.set(r.name, now - r.spawnedWallMs);
    }
    await page.waitForTimeout(50);
  }
  assert.ok(seen.size >= 3, `new tasks seen: ${JSON.stringify([...seen])}`);
  for (const [name, lag] of seen) assert.ok(lag <= 1000, `${name} appeared ${lag} ms after its spawn`);
  assert.deepEqual(problems, []);
});

test("follow-live moves the view; panning stops following; zoom changes the range", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => window.__looptrace.current && window.__looptrace.timeline.follow, null, 10000);
  const view = () => page.evaluate(() => ({ ...window.__looptrace.timeline.view, follow: window.__looptrace.timeline.follow }));
  const v1 = await view();
  await page.waitForTimeout(600);
  const v2 = await view();
  assert.ok(v2.end > v1.end + 300e6, `following: the view moved from ${v1.end} to ${v2.end}`);

  const box = await page.locator("#timeline").boundingBox();
  await page.mouse.move(box.x + 600, box.y + 200);
  await page.mouse.down();
  await page.mouse.move(box.x + 500, box.y + 200, { steps: 5 });
  await page.mouse.up();
  const v3 = await view();
  assert.equal(v3.follow, false, "panning stops following");
  assert.equal(await page.getAttribute("#follow", "aria-pressed"), "false");
  await page.waitForTimeout(500);
  const v4 = await view();
  assert.equal(v4.end, v3.end, "not following: the view stays put");

  const span = (v) => v.end - v.start;
  await page.click("#zoomin");
  const v5 = await view();
  assert.ok(Math.abs(span(v5) / span(v4) - 0.6) < 0.01, `zoom in: ${span(v4)} -> ${span(v5)}`);
  assert.ok(v5.start > v4.start && v5.end < v4.end, "zooming in narrows around the centre");
  await page.click("#zoomout");
  await page.click("#zoomout");
  const v6 = await view();
  assert.ok(Math.abs(span(v6) / span(v5) - 1 / 0.36) < 0.01, `zoom out: ${span(v5)} -> ${span(v6)}`);
  // Keys too.
  await page.focus("#timeline");
  await page.keyboard.press("+");
  const v7 = await view();
  assert.ok(span(v7) < span(v6));
  await page.keyboard.press("f");
  assert.equal((await view()).follow, true, "F resumes following");
  assert.deepEqual(problems, []);
});

test("clicking a warning moves the view to its moment and selects its task", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => [...document.querySelectorAll("#warnings button")].some((b) => b.textContent.includes("blocking poll")), null, 10000);
  const w = await page.evaluate(() => window.__looptrace.current.warnings.find((w) => w.kind === "blocking_poll"));
  await page.locator("#warnings button", { hasText: "blocking poll" }).first().click();
  const state = await page.evaluate(() => ({ view: window.__looptrace.timeline.view, selected: window.__looptrace.timeline.selected, follow: window.__looptrace.timeline.follow }));
  assert.ok(state.view.start <= w.at_ns && w.at_ns <= state.view.end, `the view ${JSON.stringify(state.view)} shows ${w.at_ns}`);
  assert.equal(state.selected.task, w.task);
  assert.equal(state.follow, false);
  await until(page, () => document.querySelector("#details h3")?.textContent.includes("blocker"));
  assert.deepEqual(problems, []);
});

test("wheel zooms at the cursor, shift-drag zooms to a range, hover explains, groups collapse", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => window.__looptrace.current && window.__looptrace.current.tasks.size > 3, null, 10000);
  const view = () => page.evaluate(() => ({ ...window.__looptrace.timeline.view }));
  const box = await page.locator("#timeline").boundingBox();
  // Stop following so the view only moves when we move it.
  await page.click("#follow");
  const v0 = await view();
  await page.mouse.move(box.x + 190 + (box.width - 190) / 2, box.y + 150);
  await page.mouse.wheel(0, -300);
  const v1 = await view();
  assert.ok(v1.end - v1.start < (v0.end - v0.start) * 0.7, "the wheel zoomed in");
  const mid0 = (v0.start + v0.end) / 2;
  const mid1 = (v1.start + v1.end) / 2;
  assert.ok(Math.abs(mid1 - mid0) < (v0.end - v0.start) * 0.01, "around the cursor (here the middle)");
  // Shift-drag over a quarter of the plot: the view becomes that quarter.
  const plot = box.width - 190;
  const x0 = box.x + 190 + plot * 0.25;
  const x1 = box.x + 190 + plot * 0.5;
  await page.keyboard.down("Shift");
  await page.mouse.move(x0, box.y + 150);
  await page.mouse.down();
  await page.mouse.move(x1, box.y + 150, { steps: 4 });
  await page.mouse.up();
  await page.keyboard.up("Shift");
  const v2 = await view();
  const span1 = v1.end - v1.start;
  assert.ok(Math.abs(v2.start - (v1.start + span1 * 0.25)) < span1 * 0.02, `zoomed to the range: ${JSON.stringify(v2)}`);
  assert.ok(Math.abs(v2.end - v2.start - span1 * 0.25) < span1 * 0.02);
  // Hover over a task lane label-side slice area shows a tooltip.
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(300);
  const target = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const i = tl.lanes.findIndex((l) => l.kind === "worker");
    const spans = tl.model.allWorkerSpans().filter((s) => s.task != null);
    const s = spans[Math.floor(spans.length / 2)];
    return { y: tl.laneY(i) + 11, x: tl.x((s.start_ns + s.end_ns) / 2) };
  });
  await page.mouse.move(box.x + target.x, box.y + target.y);
  await until(page, () => !document.getElementById("tooltip").hidden);
  assert.match(await page.textContent("#tooltip"), /worker \d+( polled|: parked)/);
  // The "blocker" tasks share a name: one group, collapsible.
  await until(page, () => window.__looptrace.timeline.lanes.some((l) => l.kind === "group"), null, 10000);
  const before = await page.evaluate(() => window.__looptrace.timeline.lanes.length);
  const group = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const i = tl.lanes.findIndex((l) => l.kind === "group");
    tl.scroller.scrollTop = 0;
    return { y: tl.laneY(i) + 11, members: tl.lanes[i].members.length };
  });
  await page.mouse.click(box.x + 40, box.y + group.y);
  await until(page, (n) => window.__looptrace.timeline.lanes.length <= n, before - 1);
  const collapsed = await page.evaluate(() => window.__looptrace.timeline.lanes.find((l) => l.kind === "group").collapsed);
  assert.equal(collapsed, true);
  assert.deepEqual(problems, []);
});

test("the program's note is shown beside the timeline and follows its changes", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => !document.getElementById("note-card").hidden, null, 10000);
  const first = await page.textContent("#note");
  assert.ok(first.length > 0);
  const title = await page.textContent("#note-title");
  assert.ok(["about this program", "so far"].includes(title), title);
  // Folding it away (clicking its title), then a new text arrives: it opens again
  // with the new text. Fold and read in one go: the text changes every 2 s.
  const folded = await page.evaluate(() => {
    document.querySelector("#note-box summary").click();
    return { open: document.getElementById("note-box").open, text: document.getElementById("note").textContent };
  });
  assert.equal(folded.open, false);
  await until(page, (t) => document.getElementById("note").textContent !== t, folded.text, 5000);
  assert.equal(await page.textContent("#note-title"), "so far");
  assert.match(await page.textContent("#note p"), /^\d+ tasks spawned\.$/);
  // Paragraph per line, `backticks` as code.
  assert.equal(await page.evaluate(() => document.querySelectorAll("#note code").length), 1);
  assert.equal(await page.textContent("#note code"), "tokio::spawn");
  assert.equal(await page.evaluate(() => document.getElementById("note-box").open), true);
  assert.deepEqual(problems, []);
  await page.close();
});

test("marks are drawn across the timeline and explained on hover", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => window.__looptrace.current && window.__looptrace.current.marks.length > 0, null, 10000);
  const mark = await page.evaluate(() => {
    const lt = window.__looptrace;
    const m = lt.current.marks[lt.current.marks.length - 1];
    lt.timeline.setFollow(false);
    lt.timeline.setView(m.at_ns - 1e9, m.at_ns + 1e9);
    return m;
  });
  assert.match(mark.label, /^\d+ tasks$/);
  await page.waitForTimeout(300);
  // A dashed line down the plot: the same column drawn with and without the marks differs.
  const probe = await page.evaluate((m) => {
    const lt = window.__looptrace;
    const tl = lt.timeline;
    const dpr = window.devicePixelRatio || 1;
    const ctx = tl.canvas.getContext("2d");
    const x = Math.round(tl.x(m.at_ns) * dpr);
    const read = () => ctx.getImageData(x, Math.round(40 * dpr), 1, Math.round(60 * dpr)).data.join();
    tl.draw();
    const withMarks = read();
    const saved = lt.current.marks;
    lt.current.marks = [];
    tl.draw();
    const without = read();
    lt.current.marks = saved;
    tl.draw();
    return { x: tl.x(m.at_ns), drawn: withMarks !== without };
  }, mark);
  assert.ok(probe.drawn, "the mark's line is drawn");
  // Hovering its flag on the axis names it.
  const box = await page.locator("#timeline").boundingBox();
  await page.mouse.move(box.x + probe.x, box.y + 16);
  await until(page, () => !document.getElementById("tooltip").hidden);
  const tip = await page.textContent("#tooltip");
  assert.match(tip, new RegExp(`^${mark.label}\\nmarked at`));
  assert.deepEqual(problems, []);
  await page.close();
});

test("what the page exchanged with a live collector was checked against the protocol's schema", () => {
  // The tests above fail on any mismatch; this one makes sure the check saw each
  // kind of message, request and reply the page lives on.
  for (const kind of ["sessions", "subscribed", "batch", "window", "stats", "op:subscribe", "op:window", "GET tasks", "GET task", "GET warnings", "GET stats", "GET marks"]) {
    assert.ok(seen.get(kind) > 0, `${kind} checked (saw ${JSON.stringify([...seen])})`);
  }
});
