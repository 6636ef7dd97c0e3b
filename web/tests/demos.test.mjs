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

test("work-stealing: lanes for both workers, both busy", async () => {
  const { page, problems } = await openDemo("work-stealing", 9);
  const workers = await page.evaluate(() => window.__looptrace.timeline.lanes.filter((l) => l.kind === "worker").map((l) => l.label));
  assert.deepEqual(workers, ["worker 0", "worker 1"]);
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
