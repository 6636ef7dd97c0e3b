// The attach example as a developer meets it: a real axum service with
// looptrace's embedded collector, asked for /blocking. The warning must name the
// route (its request's tracing span), in the REST API and on the page, and no
// task may be labelled with a path into cargo's registry.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { launch, openPage, until } from "./browser.mjs";

const bin = process.env.LOOPTRACE_SERVICE_BIN;
let browser;

before(async () => {
  assert.ok(bin, "LOOPTRACE_SERVICE_BIN names the http-service binary");
  browser = await launch();
});
after(() => browser && browser.close());

/** GET `url` on a connection of its own (as curl does): a task per request. */
function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
      .on("error", reject);
  });
}

/** Starts the service with an embedded collector: the service's and the viewer's addresses. */
async function startService() {
  const env = { ...process.env, LOOPTRACE_VIEW: "127.0.0.1:0" };
  delete env.LOOPTRACE_ADDR;
  delete env.LOOPTRACE_RECORD;
  const child = spawn(bin, ["127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const found = new Promise((resolve, reject) => {
    const look = () => {
      const app = out.match(/listening on (http:\/\/\S+)/);
      const viewer = out.match(/embedded collector at (http:\/\/\S+)/);
      if (app && viewer) resolve({ app: app[1], viewer: viewer[1] });
    };
    child.stdout.on("data", (d) => ((out += d), look()));
    child.stderr.on("data", (d) => ((out += d), look()));
    child.on("exit", (code) => reject(new Error(`the service ended (${code}): ${out}`)));
  });
  return { child, ...(await found) };
}

test("the attach example: the /blocking warning names its route in the REST API and on the page; names are readable", async () => {
  const { child, app, viewer } = await startService();
  try {
    for (const path of ["/", "/slow", "/blocking", "/"]) assert.equal((await get(app + path)).status, 200, path);
    // More connections than fit: a task each, lanes to scroll.
    for (let i = 0; i < 30; i++) await get(app + "/");
    // REST: the session's blocking-poll warning, with its context.
    const json = async (path) => (await fetch(viewer + path)).json();
    let warning;
    const deadline = Date.now() + 10000;
    let sid;
    while (!warning) {
      assert.ok(Date.now() < deadline, "no blocking-poll warning in the REST API");
      const { sessions } = await json("/api/sessions");
      sid = sessions[0]?.id;
      if (sid != null) warning = (await json(`/api/sessions/${sid}/warnings`)).warnings.find((w) => w.kind === "blocking_poll");
      if (!warning) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(warning.context, "GET /blocking");
    assert.match(warning.message, /\(in GET \/blocking\) blocked its worker/);
    const tasks = (await json(`/api/sessions/${sid}/tasks?limit=1000`)).tasks;
    for (const t of tasks) assert.ok(!/registry|^\//.test(t.name), `readable name: ${t.name}`);
    assert.ok(tasks.some((t) => /^(hyper|axum)-[0-9.]+\/src\//.test(t.name)), `a dependency's task by its crate: ${tasks.map((t) => t.name)}`);
    assert.ok(tasks.some((t) => t.context === "GET /blocking"), "a task says what it was doing");

    // The page: the warning reads the route; the task's details and its poll say it too.
    const { page, problems } = await openPage(browser, viewer + "/", { width: 1280, height: 720 });
    await until(page, () => document.getElementById("warnings").textContent.includes("GET /blocking"));
    const labels = await page.evaluate(() => window.__looptrace.timeline.lanes.map((l) => l.label || ""));
    for (const l of labels) assert.ok(!/registry|^\//.test(l), `readable lane: ${l}`);
    await page.click("#warnings li button");
    await until(page, () => document.querySelector('[data-testid="context"]')?.textContent === "GET /blocking");
    const tip = await page.evaluate((task) => {
      const tl = window.__looptrace.timeline;
      const iv = tl.model.allIntervals().find((i) => i.task === task && i.context === "GET /blocking");
      return iv && tl.describe({ interval: iv });
    }, warning.task);
    assert.match(tip || "", /in GET \/blocking/, "the poll's tooltip says what it served");
    // A quick request's polls said theirs in their ends (one event fewer): the
    // page has those too.
    await until(page, () =>
      window.__looptrace.timeline.model.allIntervals().some((i) => i.state === "running" && i.context === "GET /slow"),
    );
    // Scrolled down the lanes, the timeline is still drawn where it was: its
    // canvas stays in view, with the axis and the lanes under it.
    const scrolled = await page.evaluate(async () => {
      const tl = window.__looptrace.timeline;
      tl.scroller.scrollTop = 400;
      await new Promise((r) => setTimeout(r, 300));
      const c = tl.canvas.getBoundingClientRect();
      const s = tl.scroller.getBoundingClientRect();
      const first = tl.laneAtY(40);
      return { canvasTop: c.top, scrollerTop: s.top, scrollTop: tl.scroller.scrollTop, lane: first && first.index };
    });
    assert.ok(scrolled.scrollTop >= 300, `the lanes scroll: ${JSON.stringify(scrolled)}`);
    assert.ok(Math.abs(scrolled.canvasTop - scrolled.scrollerTop) <= 1, `the canvas stays in view: ${JSON.stringify(scrolled)}`);
    assert.ok(scrolled.lane >= 10, `lanes further down are under the axis: ${JSON.stringify(scrolled)}`);
    await page.screenshot({ path: `${process.env.LOOPTRACE_ARTIFACTS || "artifacts"}/service-scrolled.png` });
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    child.kill("SIGINT");
  }
});
