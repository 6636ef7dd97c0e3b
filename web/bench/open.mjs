// How long the page takes to show a session: from navigation to the session's
// tasks in the table and its first window of the timeline drawn. Run by
// `cargo bench -p looptrace-bench --bench ingest` against a `looptrace replay`.
// Prints one JSON line: the milliseconds of each of LOOPTRACE_BENCH_OPENS opens.

import { launch } from "../tests/browser.mjs";

const url = process.env.LOOPTRACE_BENCH_URL;
const opens = Number(process.env.LOOPTRACE_BENCH_OPENS || 5);
const browser = await launch();
const times = [];
for (let i = 0; i < opens; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(
    () => {
      const c = window.__looptrace.current;
      return c && c.tasks.size > 0 && c.win !== null && c.win !== undefined;
    },
    null,
    { timeout: 60000 },
  );
  // The frame that draws it.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  times.push(Date.now() - t0);
  await page.close();
}
await browser.close();
console.log(JSON.stringify({ open_ms: times }));
