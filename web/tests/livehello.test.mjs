// A live demo as a new user meets it: the page opened 0.3 s into `demos hello`.
// At 2.5 s it must show the session so far (not a sliver of it), what goes on
// now drawn and counted up to now, and answer keys without a click.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { launch, openPage } from "./browser.mjs";

const bin = process.env.LOOPTRACE_DEMOS_BIN;
let browser;

before(async () => {
  assert.ok(bin, "LOOPTRACE_DEMOS_BIN names the demos binary");
  browser = await launch();
});
after(() => browser && browser.close());

/** Starts a demo; its page's address, and when the demo began (ms). It keeps
 * serving after the demo is done (until killed): on a slow machine the keys
 * below are pressed after hello's 3 s, and the page must not lose its
 * collector then. */
async function startDemo(name) {
  const demo = spawn(bin, [name, "--no-tui", "--quiet", "--serve", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    demo.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/timeline: (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    demo.on("exit", (code) => reject(new Error(`the demo ended (${code}) before serving: ${out}`)));
  });
  return { demo, url, t0: Date.now() };
}

/** The colour drawn on `lane` (a task id, or "worker:<thread>") at session time `t`, and the colours it should be. */
function pixelAt(page, lane, t) {
  return page.evaluate(
    ({ lane, t }) => {
      const tl = window.__looptrace.timeline;
      const i = tl.lanes.findIndex((l) => (typeof lane === "number" ? l.kind === "task" && l.id === lane : l.kind === "worker" && `worker:${l.thread}` === lane));
      if (i < 0) return { missing: true };
      const dpr = window.devicePixelRatio || 1;
      const [r, g, b] = tl.ctx.getImageData(Math.round(tl.x(t) * dpr), Math.round((tl.laneY(i) + 11) * dpr), 1, 1).data;
      const hex = (c) => {
        const n = parseInt(c.slice(1), 16);
        return [n >> 16, (n >> 8) & 255, n & 255];
      };
      return { rgb: [r, g, b], idle: hex(tl.colors.idle), parked: hex(tl.colors.parked) };
    },
    { lane, t },
  );
}

const near = (a, b) => a.every((v, i) => Math.abs(v - b[i]) <= 8);

test("0.3 s into a live hello, at 2.5 s: the session so far, what goes on drawn and counted, keys without a click", async () => {
  const { demo, url, t0 } = await startDemo("hello");
  try {
    await new Promise((r) => setTimeout(r, Math.max(0, 300 - (Date.now() - t0))));
    const { page, problems } = await openPage(browser, url, { width: 1280, height: 720 });
    await page.waitForTimeout(Math.max(0, 2500 - (Date.now() - t0)));
    const s = await page.evaluate(() => {
      const { timeline: tl, current: m } = window.__looptrace;
      const byName = (n) => [...m.tasks.values()].find((t) => t.name === n);
      const cell = (n, col) => [...document.querySelectorAll("#tasks tbody tr")].find((tr) => tr.cells[1].textContent.trim() === n)?.cells[col].textContent.trim();
      return { view: tl.view, mode: tl.mode, now: tl.now(), range: document.getElementById("range").textContent, alice: byName("Alice")?.id, charlie: byName("Charlie")?.id, charlieIdle: cell("Charlie", 6), charlieState: cell("Charlie", 2), aliceIdle: cell("Alice", 6) };
    });
    assert.equal(s.mode, "follow");
    assert.ok(s.view.end - s.view.start >= 1e9, `a followed window at least 1 s wide: ${JSON.stringify(s.view)}`);
    assert.ok(s.view.start <= 0.5e9 && s.view.end >= s.now, `the session so far, to now: ${JSON.stringify(s)}`);
    assert.match(s.range, /following live/);
    // Alice slept until 2 s, Charlie still sleeps: their idle lines are drawn,
    // Charlie's up to now; the worker is parked now.
    for (const [task, t] of [[s.alice, 1.5e9], [s.charlie, 1.0e9], [s.charlie, s.now - 0.05e9]]) {
      const p = await pixelAt(page, task, t);
      assert.ok(near(p.rgb, p.idle), `idle line of task ${task} at ${t}: ${JSON.stringify(p)}`);
    }
    const w = await pixelAt(page, "worker:0", s.now - 0.1e9);
    assert.ok(near(w.rgb, w.parked), `worker 0 drawn parked now: ${JSON.stringify(w)}`);
    // Charlie's idle time counts up to now (it sent nothing since it went idle).
    assert.equal(s.charlieState, "idle");
    const idleS = Number(s.charlieIdle.replace(" s", ""));
    assert.ok(s.charlieIdle.endsWith(" s") && idleS >= 1.8, `Charlie idle ${s.charlieIdle} at 2.5 s`);
    // Alice slept 2 s: all of it counted (not the microseconds of her polls).
    assert.ok(s.aliceIdle.endsWith(" s") && Number(s.aliceIdle.replace(" s", "")) >= 1.9, `Alice idle ${s.aliceIdle} at 2.5 s`);

    // Keys, with no click first: + narrows the followed window and keeps following.
    await page.keyboard.press("+");
    const z = await page.evaluate(() => ({ span: window.__looptrace.timeline.view.end - window.__looptrace.timeline.view.start, mode: window.__looptrace.timeline.mode }));
    assert.equal(z.mode, "follow", "zooming keeps following");
    assert.ok(z.span < s.view.end - s.view.start, `+ zoomed in: ${z.span}`);
    // Space pauses: the view stands still and says so; Space again follows on.
    await page.keyboard.press(" ");
    const p1 = await page.evaluate(() => ({ view: window.__looptrace.timeline.view, mode: window.__looptrace.timeline.mode, range: document.getElementById("range").textContent, pressed: document.getElementById("freeze").getAttribute("aria-pressed"), follow: document.getElementById("follow").getAttribute("aria-pressed") }));
    assert.equal(p1.mode, "paused");
    assert.match(p1.range, /paused/);
    assert.equal(p1.pressed, "true");
    assert.equal(p1.follow, "false", "paused is not following");
    await page.waitForTimeout(300);
    const p2 = await page.evaluate(() => window.__looptrace.timeline.view);
    assert.deepEqual(p2, p1.view, "paused: the view stands still");
    await page.keyboard.press(" ");
    assert.equal(await page.evaluate(() => window.__looptrace.timeline.mode), "follow", "Space resumes following");
    // Looking back is browsing; F follows again.
    await page.keyboard.press("ArrowLeft");
    const b = await page.evaluate(() => ({ mode: window.__looptrace.timeline.mode, range: document.getElementById("range").textContent }));
    assert.equal(b.mode, "free");
    assert.match(b.range, /F follows live/);
    await page.keyboard.press("f");
    assert.equal(await page.evaluate(() => window.__looptrace.timeline.mode), "follow");
    // The Follow live button resumes from a pause too.
    await page.click("#freeze");
    await page.click("#follow");
    assert.equal(await page.evaluate(() => window.__looptrace.timeline.mode), "follow", "Follow live after Pause view follows");
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    demo.kill("SIGINT");
  }
});
