#!/usr/bin/env node
// Browser test of the local stack's "two phones" page: a customer texts, the agent swipe-replies
// in WhatsApp, the customer gets the SMS, the agent's message turns blue-ticked (read by the
// bridge: delivered), the stored thread shows the leg delivered, the Claim button works, a /list
// pick sets the agent's focus, a reaction shows, the agent hides their number behind a username
// and is still relayed, an opt-out request's "Opt out" button opts the customer out, and the
// customer picks the AWS SMS line, whose agent answers from that number.
//
//   node two_phones.mjs --url http://127.0.0.1:8080/ --chromium /usr/bin/chromium \
//                       --screenshot /abs/path/two-phones.png
//
// --chromium falls back to $CHROMIUM, then /usr/bin/chromium. Exit code 1 names the failing step
// and leaves <screenshot without .png>.failure.png next to the screenshot.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const STEP_TIMEOUT = 30_000;
const CUSTOMER = '+14155550134';
const AGENT = '14155550111';
const FIRST_SMS = 'Is my bike ready?';
const REPLY = "Yes, it's ready, see you at 9!";
const SECOND_SMS = 'Great, thanks!';
const UNDER_USERNAME = 'See you at 9 then';
const OPT_OUT_SMS = 'unsubscribe me please';
const AWS_LINE = 'aws-demo';
const AWS_AGENT = '14155550113';
const AWS_SMS = 'Is my laptop fixed?';
const AWS_REPLY = 'Yes, pick it up at 5';
const CHROME_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function usage(code) {
  console.log('usage: node two_phones.mjs --url http://127.0.0.1:8080/ [--chromium /usr/bin/chromium] [--screenshot /abs/two-phones.png]\n'
    + '       (--chromium defaults to $CHROMIUM, then /usr/bin/chromium)');
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { url: null, chromium: process.env.CHROMIUM || '/usr/bin/chromium', screenshot: path.resolve('two-phones.png') };
  for (let i = 0; i < argv.length; i++) {
    let key = argv[i];
    let value = null;
    const eq = key.indexOf('=');
    if (key.startsWith('--') && eq > 0) { value = key.slice(eq + 1); key = key.slice(0, eq); }
    const take = () => {
      const v = value ?? argv[++i];
      if (v == null || v === '') { console.error(`${key} needs a value`); usage(2); }
      return v;
    };
    switch (key) {
      case '--url': opts.url = take(); break;
      case '--chromium': opts.chromium = take(); break;
      case '--screenshot': opts.screenshot = path.resolve(take()); break;
      case '-h': case '--help': usage(0); break;
      default: console.error(`unknown argument: ${key}`); usage(2);
    }
  }
  if (!opts.url) { console.error('--url is required'); usage(2); }
  return opts;
}

// `import { chromium } from 'playwright-core'`, done dynamically: ES modules ignore NODE_PATH, so
// when playwright-core is installed under another prefix, look for it there too
// (NODE_PATH entries, and <prefix>/node_modules for PLAYWRIGHT_CORE_PREFIX / npm_config_prefix).
async function importPlaywrightCore() {
  try {
    return await import('playwright-core');
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  const roots = [
    ...(process.env.NODE_PATH || '').split(path.delimiter),
    ...[process.env.PLAYWRIGHT_CORE_PREFIX, process.env.npm_config_prefix].filter(Boolean).flatMap((p) => [p, path.join(p, 'node_modules'), path.join(p, 'lib', 'node_modules')]),
  ].filter(Boolean);
  for (const root of roots) {
    const pkg = path.join(root, 'playwright-core', 'package.json');
    if (!fs.existsSync(pkg)) continue;
    const entry = createRequire(pkg).resolve('playwright-core');
    const mod = await import(pathToFileURL(entry).href);
    return mod.chromium ? mod : mod.default;
  }
  throw new Error('playwright-core not found: install it (npm ci in this folder), or point NODE_PATH at the node_modules that holds it');
}

const opts = parseArgs(process.argv.slice(2));
const failureShot = opts.screenshot.replace(/\.png$/i, '') + '.failure.png';
let currentStep = 'launch the browser';
let page = null;
let browser = null;
let passed = 0;

// Quote a value for a CSS attribute selector: [data-testid="…"] (ids contain dots and "=").
const attr = (v) => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const byTestId = (id) => `[data-testid=${attr(id)}]`;

async function step(name, fn) {
  currentStep = name;
  console.log(`▶ ${name}`);
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`step took longer than ${STEP_TIMEOUT / 1000 + 5}s`)), STEP_TIMEOUT + 5000); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  passed++;
  console.log(`  ✔ ${name} (${Date.now() - t0} ms)`);
}

// Wait until `locator` matches more than `before` elements; returns the newest (last) match.
async function newMatch(locator, before, what) {
  try {
    await locator.nth(before).waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
  } catch (e) {
    throw new Error(`${what}: not seen within ${STEP_TIMEOUT / 1000}s (${e.message.split('\n')[0]})`);
  }
  return locator.last();
}

async function dumpPage() {
  if (!page) return;
  try {
    const info = await page.evaluate(() => {
      const txt = (sel, n) => Array.from(document.querySelectorAll(sel)).slice(-n).map((e) => `${e.dataset.testid ?? ''} | ${e.innerText.replace(/\s+/g, ' ').slice(0, 140)}`);
      return {
        live: document.querySelector('[data-testid="live-dot"]')?.dataset.state,
        loaded: document.body.dataset.loaded,
        customer: document.querySelector('[data-testid="customer-select"]')?.value,
        agent: document.querySelector('[data-testid="agent-select"]')?.value,
        sms: txt('[data-role="sms-message"]', 6),
        whatsapp: txt('[data-role="wa-message"]', 8),
        thread: txt('[data-role="thread-message"]', 4),
      };
    });
    console.log('  page state at failure:\n' + JSON.stringify(info, null, 2).split('\n').map((l) => '    ' + l).join('\n'));
  } catch (e) {
    console.log(`  (could not read the page: ${e.message})`);
  }
}

async function main() {
  const { chromium } = await importPlaywrightCore();
  if (!fs.existsSync(opts.chromium)) throw new Error(`no Chromium at ${opts.chromium} (use --chromium or CHROMIUM)`);
  fs.mkdirSync(path.dirname(opts.screenshot), { recursive: true });

  browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROME_ARGS, timeout: STEP_TIMEOUT });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, locale: 'en-US' });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`  [page console.${m.type()}] ${m.text()}`); });

  const smsThread = page.locator(byTestId('customer-thread'));
  const agentChat = page.locator(byTestId('agent-chat'));
  const threadPane = page.locator(byTestId('thread-pane'));
  const waIn = (text) => agentChat.locator('[data-role="wa-message"][data-direction="to_agent"]', { hasText: text });

  await step('1. open the page; live connection up and state loaded', async () => {
    const resp = await page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT });
    if (!resp || !resp.ok()) throw new Error(`GET ${opts.url} answered ${resp ? resp.status() : 'nothing'}`);
    await page.locator('[data-testid="live-dot"][data-state="connected"]').waitFor();
    await page.locator('body[data-loaded="true"]').waitFor({ state: 'attached' });
  });

  await step(`2. pick customer ${CUSTOMER} and agent ${AGENT}`, async () => {
    const sel = page.locator(byTestId('customer-select'));
    if (await sel.locator(`option[value=${attr(CUSTOMER)}]`).count()) {
      await sel.selectOption(CUSTOMER);
    } else {
      await page.locator(byTestId('customer-new-number')).fill(CUSTOMER);
      await page.locator(byTestId('customer-add')).click();
    }
    await page.waitForFunction((c) => document.querySelector('[data-testid="customer-select"]').value === c, CUSTOMER);
    const agentSel = page.locator(byTestId('agent-select'));
    await agentSel.locator(`option[value=${attr(AGENT)}]`).waitFor({ state: 'attached' });
    await agentSel.selectOption(AGENT);
    await page.waitForFunction((a) => document.querySelector('[data-testid="agent-select"]').value === a, AGENT);
  });

  let forwarded;
  let forwardedId;
  const before = {
    smsIn: 0, waFirst: 0,
  };
  await step(`3. the customer texts "${FIRST_SMS}" and sees it Delivered`, async () => {
    const mine = smsThread.locator('[data-role="sms-message"][data-direction="in"]', { hasText: FIRST_SMS });
    before.smsIn = await mine.count();
    before.waFirst = await waIn(FIRST_SMS).count();
    await page.locator(byTestId('customer-input')).fill(FIRST_SMS);
    await page.locator(byTestId('customer-send')).click();
    const bubble = await newMatch(mine, before.smsIn, 'the customer\'s own SMS bubble');
    await bubble.locator('[data-role="sms-status"]', { hasText: /^Delivered$/ }).waitFor();
  });

  await step(`4. the agent's WhatsApp gets "${FIRST_SMS}"`, async () => {
    forwarded = await newMatch(waIn(FIRST_SMS), before.waFirst, `a WhatsApp message containing "${FIRST_SMS}"`);
    const kind = await forwarded.getAttribute('data-kind');
    const id = await forwarded.getAttribute('data-id');
    if (kind !== 'template' && kind !== 'buttons') throw new Error(`expected a template or buttons message, got kind=${kind}`);
    console.log(`  (${kind} ${id})`);
    forwardedId = id;
    forwarded = agentChat.locator(byTestId('wa-' + id));
  });

  let ownId;
  await step('5. swipe-reply to it (real pointer drag) and send the answer', async () => {
    const bubble = forwarded.locator('[data-role="bubble"]');
    await bubble.scrollIntoViewIfNeeded();
    const box = await bubble.boundingBox();
    if (!box) throw new Error('the forwarded bubble has no box');
    const x = box.x + Math.min(40, box.width / 3);
    const y = box.y + box.height / 2;
    await page.mouse.move(x, y);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) {
      await page.mouse.move(x + i * 10, y + (i % 2), { steps: 2 });
      await page.waitForTimeout(15);
    }
    await page.mouse.up();
    const bar = page.locator(byTestId('agent-replying'));
    await bar.waitFor({ state: 'visible' });
    const replyTo = await bar.getAttribute('data-reply-to');
    if (replyTo !== forwardedId) throw new Error(`the replying-to bar quotes ${replyTo}, not ${forwardedId}`);
    await page.mouse.move(5, 5);
    await page.locator(byTestId('agent-input')).fill(REPLY);
    const sent = page.waitForResponse((r) => r.url().includes('/_sim/agent/send') && r.request().method() === 'POST');
    await page.locator(byTestId('agent-send')).click();
    const resp = await sent;
    const reqBody = JSON.parse(resp.request().postData() || '{}');
    if (reqBody.context !== forwardedId) throw new Error(`agent/send carried context ${reqBody.context}, not ${forwardedId}`);
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok() || body.ok === false || !body.wamid) throw new Error(`agent/send answered ${resp.status()} ${JSON.stringify(body)}`);
    ownId = body.wamid;
    console.log(`  (sent ${ownId}, webhook ${body.webhook_status})`);
    await bar.waitFor({ state: 'hidden' });
  });

  await step(`6. the customer's phone receives "${REPLY}"`, async () => {
    await smsThread.locator('[data-role="sms-message"][data-direction="out"]', { hasText: REPLY }).last().waitFor();
  });

  await step('7. the agent sees blue ticks on their own message: read by the bridge, delivered', async () => {
    const own = agentChat.locator(byTestId('wa-' + ownId));
    await own.waitFor();
    await own.locator('[data-role="quote"]').waitFor();
    const ticks = own.locator('[data-role="ticks"][data-state="read"]');
    await ticks.waitFor();
    const title = await ticks.getAttribute('title');
    if (!/read by the bridge: delivered to the customer/i.test(title ?? '')) throw new Error(`the blue ticks say "${title}"`);
    if (await agentChat.locator(byTestId('reaction-' + ownId)).count()) throw new Error('a reaction shows as well as the read mark');
  });

  await step('8. the stored thread shows the outbound message with a delivered leg', async () => {
    await threadPane
      .locator('[data-role="thread-message"][data-direction="outbound"]', { hasText: REPLY })
      .filter({ has: page.locator('[data-role="leg"] [data-field="status"]', { hasText: /^delivered$/ }) })
      .last()
      .waitFor();
  });

  await step(`9. the customer texts "${SECOND_SMS}"; the agent gets Claim, taps it, and is told "You claimed"`, async () => {
    const buttonsMsgs = agentChat.locator('[data-role="wa-message"][data-kind="buttons"]', { hasText: SECOND_SMS });
    const claimedNotes = agentChat.locator('[data-role="wa-message"][data-direction="to_agent"][data-kind="text"]', { hasText: 'You claimed' });
    const nButtons = await buttonsMsgs.count();
    const nClaimed = await claimedNotes.count();
    await page.locator(byTestId('customer-input')).fill(SECOND_SMS);
    await page.locator(byTestId('customer-send')).click();
    const msg = await newMatch(buttonsMsgs, nButtons, `a buttons message containing "${SECOND_SMS}"`);
    const claim = msg.locator('[data-testid^="wa-button-"]', { hasText: /^Claim$/ });
    await claim.waitFor();
    console.log(`  (button ${await claim.getAttribute('data-testid')})`);
    await claim.click();
    await newMatch(claimedNotes, nClaimed, 'a "You claimed" notice');
  });

  await step(`10. full-page screenshot (the README's picture of the core exchange) → ${opts.screenshot}`, async () => {
    // Park the pointer and let the hover-only bubble actions fade out before the picture.
    await page.mouse.move(1, 1);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('.wa-actions'))
      .every((el) => getComputedStyle(el).opacity === '0'), null, { timeout: 2000 }).catch(() => {});
    await page.screenshot({ path: opts.screenshot, fullPage: true });
  });

  await step('11. /list: the agent opens the list, picks the conversation and is told it is their focus', async () => {
    const lists = agentChat.locator('[data-role="wa-message"][data-kind="list"]');
    const focusNotes = agentChat.locator('[data-role="wa-message"][data-direction="to_agent"]', { hasText: 'Now answering' });
    const nLists = await lists.count();
    const nFocus = await focusNotes.count();
    await page.locator(byTestId('agent-input')).fill('/list');
    await page.locator(byTestId('agent-send')).click();
    const list = await newMatch(lists, nLists, 'the /list answer');
    const listId = await list.getAttribute('data-id');
    await page.locator(byTestId('list-open-' + listId)).click();
    const row = page.locator(`${byTestId('list-sheet')} input[type="radio"]`).first();
    await row.check();
    const picked = await row.getAttribute('value');
    await page.locator(byTestId('list-send')).click();
    console.log(`  (picked ${picked})`);
    await newMatch(focusNotes, nFocus, 'a "Now answering" notice');
  });

  await step('12. the agent reacts 👍 to the customer\'s message; the reaction shows on it', async () => {
    const msg = agentChat.locator('[data-role="wa-message"][data-direction="to_agent"]', { hasText: SECOND_SMS }).last();
    const id = await msg.getAttribute('data-id');
    await msg.hover();
    await page.locator(byTestId('react-' + id)).click();
    await page.locator(byTestId('react-option-👍')).click();
    await agentChat.locator(byTestId('reaction-' + id), { hasText: '👍' }).waitFor();
  });

  await step(`13. the agent hides their number (username) and "#handle ${UNDER_USERNAME}" still reaches the customer`, async () => {
    const handle = (await page.locator(byTestId('thread-handle')).innerText()).trim();
    const toggle = page.locator(byTestId('agent-username'));
    const switched = page.waitForResponse((r) => r.url().includes('/_sim/agent/username'));
    await toggle.check();
    const resp = await switched;
    if (!resp.ok()) throw new Error(`agent/username answered ${resp.status()}`);
    await page.locator(byTestId('wa-business-sub'), { hasText: '(number hidden)' }).waitFor();
    await page.locator(byTestId('agent-input')).fill(`${handle} ${UNDER_USERNAME}`);
    await page.locator(byTestId('agent-send')).click();
    await smsThread.locator('[data-role="sms-message"][data-direction="out"]', { hasText: UNDER_USERNAME }).last().waitFor();
    await toggle.uncheck();
    await page.waitForFunction(() => !document.querySelector('[data-testid="wa-business-sub"]').textContent.includes('number hidden'));
  });

  await step(`14. the customer texts "${OPT_OUT_SMS}"; the copy's first button is Opt out, and tapping it opts them out`, async () => {
    const buttonsMsgs = agentChat.locator('[data-role="wa-message"][data-kind="buttons"]', { hasText: OPT_OUT_SMS });
    const nButtons = await buttonsMsgs.count();
    await page.locator(byTestId('customer-input')).fill(OPT_OUT_SMS);
    await page.locator(byTestId('customer-send')).click();
    const msg = await newMatch(buttonsMsgs, nButtons, `a buttons message containing "${OPT_OUT_SMS}"`);
    const first = msg.locator('[data-testid^="wa-button-"]').first();
    await first.waitFor();
    const id = await first.getAttribute('data-button-id');
    if (!/^act:optout:/.test(id ?? '') || (await first.innerText()).trim() !== 'Opt out') {
      throw new Error(`the first button is ${id} "${await first.innerText()}", not Opt out`);
    }
    const pressed = page.waitForResponse((r) => r.url().includes('/_sim/agent/button'));
    await first.click();
    const body = JSON.parse((await pressed).request().postData() || '{}');
    if (body.id !== id) throw new Error(`agent/button carried ${body.id}, not ${id}`);
    await page.locator(byTestId('thread-opted-out')).waitFor();
  });

  await step(`15. the customer picks the AWS SMS line and texts "${AWS_SMS}"; ${AWS_AGENT} answers it from the AWS number`, async () => {
    const lineSel = page.locator(byTestId('line-select'));
    await lineSel.locator(`option[value=${attr(AWS_LINE)}]`).waitFor({ state: 'attached' });
    await lineSel.selectOption(AWS_LINE);
    await page.locator(byTestId('sms-line-number'), { hasText: '+1 415-555-0200' }).waitFor();
    await page.waitForFunction((a) => document.querySelector('[data-testid="agent-select"]').value === a, AWS_AGENT);
    if (await smsThread.locator('[data-role="sms-message"]', { hasText: FIRST_SMS }).count()) {
      throw new Error('the Twilio line\'s conversation shows on the AWS number');
    }
    await page.locator(byTestId('customer-input')).fill(AWS_SMS);
    await page.locator(byTestId('customer-send')).click();
    const mine = smsThread.locator('[data-role="sms-message"][data-direction="in"]', { hasText: AWS_SMS });
    await mine.locator('[data-role="sms-status"]', { hasText: /^Delivered$/ }).waitFor();
    const copy = waIn(AWS_SMS).last();
    await copy.waitFor();
    const id = await copy.getAttribute('data-id');
    await agentChat.locator(byTestId('reply-' + id)).click();
    await page.locator(byTestId('agent-input')).fill(AWS_REPLY);
    await page.locator(byTestId('agent-send')).click();
    await smsThread.locator('[data-role="sms-message"][data-direction="out"]', { hasText: AWS_REPLY }).waitFor();
    await threadPane
      .locator('[data-role="thread-message"][data-direction="outbound"]', { hasText: AWS_REPLY })
      .filter({ has: page.locator('[data-role="leg"] [data-field="status"]', { hasText: /^delivered$/ }) })
      .waitFor();
  });
}

let failed = false;
try {
  await main();
  console.log(`two_phones: ${passed} passed, 0 failed`);
} catch (e) {
  failed = true;
  console.error(`✘ FAILED at step "${currentStep}": ${e?.message ?? e}`);
  console.error(`two_phones: ${passed} passed, 1 failed`);
  await dumpPage();
  if (page) {
    try {
      await page.screenshot({ path: failureShot, fullPage: true });
      console.error(`  failure screenshot: ${failureShot}`);
    } catch (err) {
      console.error(`  (no failure screenshot: ${err.message})`);
    }
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
