// A live session: new tasks appear fast, follow-live, pan, zoom, warnings.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, until } from "./browser.mjs";

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
