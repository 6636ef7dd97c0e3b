// The hello demo's recording, replayed: the table, the details, the canvas.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { launch, openPage, until, tableRows } from "./browser.mjs";

const url = process.env.LOOPTRACE_REPLAY_URL;
const artifacts = process.env.LOOPTRACE_ARTIFACTS || "artifacts";
let browser;

before(async () => {
  assert.ok(url, "LOOPTRACE_REPLAY_URL names a collector replaying the hello demo");
  browser = await launch();
});
after(() => browser && browser.close());

test("the hello replay: three tasks, two polls each, Bob woken by the timer, slices drawn", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => document.querySelectorAll("#tasks tbody tr").length === 3 && [...document.querySelectorAll("#tasks tbody tr")].every((tr) => tr.cells[2].textContent.trim() === "completed"), null, 15000);
  const rows = await tableRows(page);
  assert.deepEqual(rows.map((r) => r.name).sort(), ["Alice", "Bob", "Charlie"]);
  for (const r of rows) assert.equal(r.polls, 2, `${r.name} polled twice`);

  // Sorting by name, descending, then filtering.
  await page.click('th[data-key="name"]');
  await page.click('th[data-key="name"]');
  assert.deepEqual((await tableRows(page)).map((r) => r.name), ["Charlie", "Bob", "Alice"]);
  await page.fill("#filter", "li");
  assert.deepEqual((await tableRows(page)).map((r) => r.name).sort(), ["Alice", "Charlie"]);
  await page.fill("#filter", "");

  // Click Bob's lane (its label on the canvas): details with a wake by the timer.
  const bob = await page.evaluate(() => {
    const tl = window.__looptrace.timeline;
    const i = tl.lanes.findIndex((l) => l.kind === "task" && l.label.startsWith("Bob"));
    return { y: tl.laneY(i) + 11, i };
  });
  assert.ok(bob.i >= 0, "Bob has a lane");
  const box = await page.locator("#timeline").boundingBox();
  await page.mouse.click(box.x + 60, box.y + bob.y);
  await until(page, () => document.querySelector("#details h3")?.textContent.includes("Bob"));
  const wakes = await page.textContent('#details [data-testid="wakes"]');
  assert.match(wakes, /timer 1/);
  assert.match(await page.textContent("#details"), /polls\s*2/);

  // Zoom onto Bob's second poll: its slice is drawn (pixels differ from the background).
  const target = await page.evaluate(async () => {
    const lt = window.__looptrace;
    const m = lt.current;
    const bobId = [...m.tasks.values()].find((t) => t.name === "Bob").id;
    const win = await lt.conn.window(m.id, 0, 4e9, 100000, 100);
    const polls = win.intervals.filter((i) => i.task === bobId && i.state === "running");
    const p = polls[1];
    const pad = (p.end_ns - p.start_ns) * 2;
    lt.timeline.setView(p.start_ns - pad, p.end_ns + pad);
    return { bobId, mid: (p.start_ns + p.end_ns) / 2, ready: p.ready };
  });
  assert.equal(target.ready, true, "Bob's second poll returned Ready");
  await page.waitForTimeout(400);
  const pixel = await page.evaluate(({ bobId, mid }) => {
    const tl = window.__looptrace.timeline;
    const i = tl.lanes.findIndex((l) => l.kind === "task" && l.id === bobId);
    const x = tl.x(mid);
    const y = tl.laneY(i) + 11;
    const dpr = window.devicePixelRatio || 1;
    const ctx = tl.canvas.getContext("2d");
    const d = ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
    const bg = ctx.getImageData(Math.round((tl.width - 5) * dpr), Math.round((tl.height - 5) * dpr), 1, 1).data;
    return { slice: [...d], background: [...bg] };
  }, target);
  assert.notDeepEqual(pixel.slice.slice(0, 3), pixel.background.slice(0, 3), "a slice is drawn where Bob's poll is");

  // The screenshot people see in the README.
  await page.evaluate(() => window.__looptrace.timeline.fitAll());
  await page.waitForTimeout(400);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}/hello-timeline.png` });
  assert.deepEqual(problems, []);
});

test("replay controls pause and change speed", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => !document.getElementById("replay").hidden);
  await page.selectOption("#speed", "0.25");
  await until(page, () => document.getElementById("speed").value === "0.25");
  await page.click("#play");
  await until(page, () => document.getElementById("play").textContent === "Play");
  await page.click("#play");
  await until(page, () => document.getElementById("play").textContent === "Pause");
  assert.deepEqual(problems, []);
});

test("a dropped connection shows a banner and reconnects by itself", async () => {
  const { page, problems } = await openPage(browser, url);
  await until(page, () => window.__looptrace.conn.connected);
  await page.evaluate(() => window.__looptrace.conn.ws.close());
  await until(page, () => !document.getElementById("banner").hidden);
  assert.match(await page.textContent("#banner"), /Lost the connection to the collector; reconnecting/);
  await until(page, () => document.getElementById("banner").hidden && window.__looptrace.conn.connected, null, 5000);
  assert.deepEqual(problems, []);
});

test("light and dark themes follow the system setting", async () => {
  const bg = async (scheme) => {
    const page = await browser.newPage();
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto(url);
    const c = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.close();
    return c;
  };
  const light = await bg("light");
  const dark = await bg("dark");
  assert.equal(light, "rgb(255, 255, 255)");
  assert.notEqual(dark, light);
  const [r, g, b] = dark.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 150, `dark background ${dark}`);
});
