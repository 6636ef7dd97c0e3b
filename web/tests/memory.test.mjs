// A session the collector's memory budget had to cut: the page says what was taken.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, until } from "./browser.mjs";

const url = process.env.LOOPTRACE_BUDGET_URL;
let browser;

before(async () => {
  assert.ok(url, "LOOPTRACE_BUDGET_URL names a collector whose memory budget was reached");
  browser = await launch();
});
after(() => browser && browser.close());

test("the page says what the memory budget took", async () => {
  const { page, problems } = await openPage(browser, url, { width: 1280, height: 720 });
  await until(page, () => document.getElementById("capture").textContent.includes("Memory budget reached"), null, 10000);
  const text = await page.evaluate(() => document.getElementById("capture").textContent);
  assert.match(text, /the oldest [\d,]+ events evicted/);
  assert.match(text, /idle tasks folded by spawn location/);
  assert.deepEqual(problems, []);
});
