// Shared set-up of the browser tests: Chromium from the system, a page that fails
// the test on console errors and failed requests.

import { chromium } from "playwright-core";
import { checkMessage, checkReply, checkRequest } from "./protocol.mjs";

export const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: FLAGS });
}

/** A page, and the problems it reported (console errors, page errors, failed
 * requests, and messages or replies that do not match the protocol's schema). */
export async function openPage(browser, url, viewport = { width: 1400, height: 850 }) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", async (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    if (!new URL(r.url()).pathname.startsWith("/api/")) return;
    try {
      const wrong = checkReply(r.url(), r.status(), await r.json());
      if (wrong) problems.push(wrong);
    } catch (e) {
      // The page navigated away before the body was read: nothing to check.
      if (!String(e).includes("closed") && !String(e).includes("No resource")) problems.push(`reply of ${r.url()}: ${e}`);
    }
  });
  page.on("websocket", (ws) => {
    ws.on("framereceived", (f) => {
      const wrong = checkMessage(f.payload);
      if (wrong) problems.push(wrong);
    });
    ws.on("framesent", (f) => {
      const wrong = checkRequest(f.payload);
      if (wrong) problems.push(wrong);
    });
  });
  await page.goto(url);
  return { page, problems };
}

export async function until(page, fn, arg, timeout = 5000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
}

/** Names and poll counts shown in the task table. */
export async function tableRows(page) {
  return page.$$eval("#tasks tbody tr", (trs) => trs.map((tr) => ({ name: tr.cells[1].textContent.trim(), state: tr.cells[2].textContent.trim(), polls: Number(tr.cells[3].textContent) })));
}
