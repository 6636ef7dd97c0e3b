// Benchmark of the browser timeline on a session with 1M poll slices:
// frame times while panning (from requestAnimationFrame), at three zoom levels,
// and the time from an event reaching the collector to its slice on screen.
// Run through `cargo test -p demos --release --test browser -- --ignored timeline_benchmark --nocapture`.

import { launch } from "../tests/browser.mjs";

const url = process.env.LOOPTRACE_BENCH_URL;
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
await page.goto(url);
await page.waitForFunction(() => window.__looptrace.current && window.__looptrace.current.tasks.size >= 200, null, { timeout: 60000 });

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function panFor(spanNs, ms) {
  return page.evaluate(
    async ({ spanNs, ms }) => {
      const tl = window.__looptrace.timeline;
      tl.setFollow(false);
      tl.setView(1e9, 1e9 + spanNs);
      await new Promise((r) => setTimeout(r, 1500)); // the window for this zoom arrives
      const frames = [];
      const draws = [];
      let last = null;
      const t0 = performance.now();
      await new Promise((resolve) => {
        const step = (t) => {
          if (last != null) frames.push(t - last);
          last = t;
          // Pan a little every frame, as a drag would.
          tl.setView(tl.view.start + spanNs / 200, tl.view.end + spanNs / 200);
          const s = tl.stats();
          if (s.length) draws.push(s[s.length - 1]);
          if (performance.now() - t0 < ms) requestAnimationFrame(step);
          else resolve();
        };
        requestAnimationFrame(step);
      });
      return { frames, draws, detail: tl.model.win && tl.model.win.detail };
    },
    { spanNs, ms },
  );
}

const report = {};
for (const [label, span] of [["whole session (10 s)", 10e9], ["100 ms", 100e6], ["5 ms", 5e6]]) {
  const r = await panFor(span, 3000);
  report[label] = {
    detail: r.detail,
    frames: r.frames.length,
    frame_ms_median: +pct(r.frames, 0.5).toFixed(2),
    frame_ms_p95: +pct(r.frames, 0.95).toFixed(2),
    draw_ms_median: +pct(r.draws, 0.5).toFixed(2),
    draw_ms_p95: +pct(r.draws, 0.95).toFixed(2),
  };
}

// Event to pixels: follow live; probes named probe-<unix ms at ingest> arrive.
const latencies = await page.evaluate(async () => {
  const tl = window.__looptrace.timeline;
  tl.drawSeen = new Map();
  const since = performance.timeOrigin + performance.now() + 500; // probes sent from now on
  tl.setView(0, 1e9, { keepFollow: true });
  tl.setFollow(true);
  // Probes get the newest lanes, at the bottom: keep them in view.
  const keepDown = setInterval(() => (tl.scroller.scrollTop = tl.scroller.scrollHeight), 20);
  await new Promise((r) => setTimeout(r, 6000));
  clearInterval(keepDown);
  const m = window.__looptrace.current;
  const out = [];
  for (const t of m.tasks.values()) {
    if (!t.name.startsWith("probe-")) continue;
    const sent = Number(t.name.slice(6));
    if (sent < since) continue;
    const drawn = tl.drawSeen.get(t.id);
    if (drawn) out.push(drawn - sent);
  }
  return out;
});
report["event to pixels"] = latencies.length
  ? { probes: latencies.length, ms_median: +pct(latencies, 0.5).toFixed(1), ms_p95: +pct(latencies, 0.95).toFixed(1) }
  : { probes: 0 };
console.log(JSON.stringify(report, null, 2));
await browser.close();
