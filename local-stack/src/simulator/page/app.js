// Two phones side by side: the customer's SMS phone, the agent's WhatsApp, and the thread as
// the bridge stored it. Plain browser JavaScript, no build step; everything comes from the
// simulator's JSON API on the same origin (/_sim/state, /_sim/events, /_sim/thread, POSTs).
'use strict';
(() => {
  // ---------------------------------------------------------------- small helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const tid = (id) => $(`[data-testid="${id}"]`);
  const arr = (v) => (Array.isArray(v) ? v : []);
  const SWIPE_PX = 60;
  const EMOJIS = ['👍', '❤️', '😂', '🙏'];
  const MEDIA_KINDS = new Set(['image', 'video', 'audio', 'document', 'sticker']);
  const REPLY_KINDS = new Set(['button_reply', 'list_reply']);

  const ICON = {
    back: '<svg viewBox="0 0 24 24"><path d="M15 4.5 7.5 12l7.5 7.5" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>',
    up: '<svg viewBox="0 0 24 24"><path d="M12 19V6M6 11.5 12 5.5l6 6" fill="none" stroke="currentColor" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>',
    plus: '<svg viewBox="0 0 24 24"><path d="M12 5v14M5 12h14" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>',
    send: '<svg viewBox="0 0 24 24"><path d="M3.4 20.4 21 12 3.4 3.6l-.01 6.53L15 12 3.39 13.87z" fill="currentColor"/></svg>',
    clip: '<svg viewBox="0 0 24 24"><path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5.8a3 3 0 0 1 6 0v9.7a1.5 1.5 0 0 1-3 0V7" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linecap="round"/></svg>',
    smile: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="1.7"/><circle cx="9" cy="10" r="1.2" fill="currentColor"/><circle cx="15" cy="10" r="1.2" fill="currentColor"/><path d="M8 14.2c1 1.6 2.4 2.4 4 2.4s3-.8 4-2.4" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linecap="round"/></svg>',
    reply: '<svg viewBox="0 0 24 24"><path d="M10 8.5V5L3 11.5 10 18v-3.6c4.6 0 7.8 1.4 10.5 4.9-.9-5.1-3.9-10-10.5-10.8z" fill="currentColor"/></svg>',
    list: '<svg viewBox="0 0 24 24"><path d="M4 6.5h2v2H4zm4 .1h12v1.8H8zM4 11h2v2H4zm4 .1h12v1.8H8zm-4 4.4h2v2H4zm4 .1h12v1.8H8z" fill="currentColor"/></svg>',
    ticks: '<svg viewBox="0 0 18 11"><path d="M12.2.9 5.7 8.5 2.9 5.8 1.8 6.9l4 3.8 7.5-8.8zM16.5.9 10 8.5l-.9-.9-1.1 1.2 2.1 1.9 7.5-8.8z" fill="currentColor"/></svg>',
    clock: '<svg viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" stroke-width="1.4"/><path d="M8 4.6V8l2.2 1.4" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round"/></svg>',
    warn: '<svg viewBox="0 0 24 24"><path d="M12 2.8 1.6 20.6h20.8zm1 14.7h-2v-2h2zm0-3.6h-2V9h2z" fill="currentColor"/></svg>',
    doc: '<svg viewBox="0 0 24 24"><path d="M6.5 2.5h7.2l5.3 5.3v12.2a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 5 20V4a1.5 1.5 0 0 1 1.5-1.5z" fill="currentColor" opacity=".85"/><path d="M13.5 2.6V8h5.4" fill="none" stroke="#fff" stroke-width="1.2" opacity=".8"/></svg>',
    shop: '<svg viewBox="0 0 24 24"><path d="M4.2 4h15.6l1.4 5.2a2.9 2.9 0 0 1-5.3 1.7 2.9 2.9 0 0 1-3.9 1.2A2.9 2.9 0 0 1 12 12a2.9 2.9 0 0 1-3.9-1.1 2.9 2.9 0 0 1-5.3-1.7zM5 13.2V20h5v-4.2h4V20h5v-6.8" fill="currentColor"/></svg>',
    close: '<svg viewBox="0 0 24 24"><path d="M6 6l12 12M18 6 6 18" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>',
    tmpl: '<svg viewBox="0 0 24 24"><path d="M5 4h14v16H5z" fill="none" stroke="currentColor" stroke-width="1.8"/><path d="M8 8h8M8 12h8M8 16h5" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/></svg>',
    icons: '<svg viewBox="0 0 68 12"><g fill="currentColor"><rect x="0" y="8" width="3" height="4" rx=".7"/><rect x="4.5" y="5.5" width="3" height="6.5" rx=".7"/><rect x="9" y="3" width="3" height="9" rx=".7"/><rect x="13.5" y="0" width="3" height="12" rx=".7"/><path d="M30 2.2c2.4 0 4.6.9 6.2 2.5l-1.3 1.3A7 7 0 0 0 30 4a7 7 0 0 0-4.9 2l-1.3-1.3A8.8 8.8 0 0 1 30 2.2zm0 3.6c1.4 0 2.7.5 3.6 1.4l-1.3 1.3a3.3 3.3 0 0 0-4.6 0l-1.3-1.3A5.1 5.1 0 0 1 30 5.8zm0 3.5 1.4 1.4L30 12l-1.4-1.3z"/><rect x="42" y=".8" width="22" height="10.4" rx="3" fill="none" stroke="currentColor" stroke-width="1" opacity=".5"/><rect x="43.6" y="2.4" width="16" height="7.2" rx="1.6"/><rect x="65" y="4" width="1.6" height="4" rx=".8" opacity=".5"/></g></svg>',
  };

  function icon(name, cls) {
    const s = document.createElement('span');
    s.className = 'ic' + (cls ? ' ' + cls : '');
    s.setAttribute('aria-hidden', 'true');
    s.innerHTML = ICON[name] || '';
    return s;
  }

  // h('div', {class, text, onclick, 'data-x': …}, ...children)
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'html') el.innerHTML = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat()) {
      if (kid == null || kid === false) continue;
      el.append(kid.nodeType ? kid : String(kid));
    }
    return el;
  }

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  // WhatsApp's light formatting on already-escaped text: ```mono```, *bold*, _italic_, ~strike~.
  function waFormat(text) {
    let out = esc(text);
    out = out.replace(/```([\s\S]+?)```/g, '<code>$1</code>');
    const mark = (ch, tag) => {
      const c = ch === '*' ? '\\*' : ch;
      const re = new RegExp(`(^|[^\\p{L}\\p{N}${c}])${c}(?=\\S)([^\\n]*?\\S)${c}(?![\\p{L}\\p{N}${c}])`, 'gu');
      out = out.replace(re, `$1<${tag}>$2</${tag}>`);
    };
    mark('*', 'strong');
    mark('_', 'em');
    mark('~', 's');
    return out;
  }

  function pretty(num) {
    const s = String(num ?? '');
    const d = s.replace(/^\+/, '');
    if (/^1\d{10}$/.test(d)) return `+1 ${d.slice(1, 4)}-${d.slice(4, 7)}-${d.slice(7)}`;
    if (/^\d+$/.test(d)) return '+' + d;
    return s;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function parseAt(at) {
    const d = new Date(at);
    return isNaN(d.getTime()) ? null : d;
  }
  function hhmm(at) {
    const d = parseAt(at);
    return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : '';
  }
  const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  function dayName(d) {
    const today = new Date();
    const yest = new Date(today.getTime() - 86400e3);
    if (dayKey(d) === dayKey(today)) return 'Today';
    if (dayKey(d) === dayKey(yest)) return 'Yesterday';
    return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: d.getFullYear() === today.getFullYear() ? undefined : 'numeric' });
  }
  function shortId(id) {
    const s = String(id ?? '');
    return s.length > 14 ? `${s.slice(0, 7)}…${s.slice(-4)}` : s;
  }
  const firstLine = (s) => String(s ?? '').split('\n').find((l) => l.trim()) ?? '';

  const store = {
    get(k, dflt) {
      try { const v = localStorage.getItem('sim.' + k); return v == null ? dflt : JSON.parse(v); } catch { return dflt; }
    },
    set(k, v) {
      try { localStorage.setItem('sim.' + k, JSON.stringify(v)); } catch { /* private mode */ }
    },
  };

  // ---------------------------------------------------------------- app state
  const S = {
    state: null, // normalised /_sim/state
    loaded: false,
    customer: store.get('customer', null),
    lineId: store.get('line', null), // the line (business number) the customer texts
    agent: store.get('agent', null),
    extraCustomers: arr(store.get('extraCustomers', [])),
    thread: null,
    threadFor: null,
    replyTo: null, // wamid the next agent message quotes
    waById: new Map(),
    waReactions: new Map(), // target wamid → Map(direction → emoji)
    swiping: null, // the row being dragged: the chat is not re-rendered under the finger
    waPending: false,
    // The agent's "hide my number" choice while the simulator has not yet shown it back: a
    // live update that lands in between must not untick the box under the user's click.
    hiddenWanted: null, // { agent, hidden }
    lastEvent: null,
  };

  let els = {};

  function normaliseLine(line) {
    const agents = arr(line.agents).map((a) => (typeof a === 'string' || typeof a === 'number'
      ? { wa_id: String(a), name: null, user_id: null, username: null, number_hidden: false }
      : {
        wa_id: String(a.wa_id ?? ''), name: a.name ?? null, user_id: a.user_id ?? null,
        username: a.username ?? null, number_hidden: a.number_hidden === true,
      }));
    return {
      id: line.id ?? null, sms_number: line.sms_number ?? '', provider: line.sms_provider ?? 'twilio',
      pnid: line.whatsapp_phone_number_id ?? '', agents, opted_out: line.opted_out == null ? null : arr(line.opted_out).map(String),
    };
  }

  // Every line; `line` is the one the customer texts (S.lineId, else the first).
  function normalise(st) {
    st = st && typeof st === 'object' ? st : {};
    const lines = arr(st.lines).map(normaliseLine);
    const line = lines.find((l) => l.id === S.lineId) ?? lines[0] ?? normaliseLine({});
    return {
      lines,
      line,
      customers: arr(st.customers).map(String),
      sms: arr(st.sms),
      whatsapp: arr(st.whatsapp),
      settings: st.settings && typeof st.settings === 'object' ? st.settings : {},
      opted_out: line.opted_out ?? arr(st.opted_out).map(String),
      failures_injected: Number(st.failures_injected ?? 0),
    };
  }

  const PROVIDER_NAMES = { twilio: 'Twilio', aws_end_user_messaging: 'AWS SMS' };
  const providerName = (p) => PROVIDER_NAMES[p] ?? p;

  const agentOf = (waId) => S.state?.line.agents.find((a) => a.wa_id === String(waId)) ?? null;
  const agentName = (waId) => agentOf(waId)?.name ?? null;
  const agentLabel = (waId) => {
    const n = agentName(waId);
    return n ? `${n} · ${pretty(waId)}` : pretty(waId);
  };

  function customerList() {
    const seen = new Set();
    const out = [];
    const add = (c) => { if (c && !seen.has(c)) { seen.add(c); out.push(c); } };
    (S.state?.customers ?? []).forEach(add);
    (S.state?.sms ?? []).forEach((m) => add(m.customer));
    S.extraCustomers.forEach(add);
    return out;
  }

  function ensureSelections() {
    if (!S.state.lines.some((l) => l.id === S.lineId)) S.lineId = S.state.line.id;
    const cs = customerList();
    if (!cs.includes(S.customer)) S.customer = cs[0] ?? null;
    const as = S.state.line.agents.map((a) => a.wa_id);
    if (!as.includes(S.agent)) S.agent = as[0] ?? null;
  }

  // ---------------------------------------------------------------- network
  async function getJSON(path) {
    const r = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  async function post(path, body) {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    let j = null;
    try { j = await r.json(); } catch { /* empty or not JSON */ }
    if (!r.ok || (j && j.ok === false)) throw new Error((j && j.error) || `HTTP ${r.status}`);
    return j || {};
  }

  // Refetch state + thread; at most one refresh in flight, and one more if events came meanwhile.
  let inFlight = false;
  let again = false;
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      do {
        again = false;
        try {
          await loadOnce();
        } catch (e) {
          console.warn('refresh failed', e);
          toast('customer', `Couldn't load the simulator state: ${e.message}`);
        }
      } while (again);
    } finally {
      inFlight = false;
    }
  }

  async function loadOnce() {
    const customerBefore = S.customer;
    const lineBefore = S.lineId;
    const threadP = customerBefore ? fetchThread(customerBefore, lineBefore) : Promise.resolve(null);
    const st = normalise(await getJSON('/_sim/state'));
    S.state = st;
    ensureSelections();
    let thread = await threadP;
    if (S.customer !== customerBefore || S.lineId !== lineBefore) thread = S.customer ? await fetchThread(S.customer, S.lineId) : null;
    S.thread = thread;
    S.threadFor = S.customer;
    S.loaded = true;
    render();
    document.body.dataset.loaded = 'true';
  }

  async function fetchThread(customer, line) {
    try {
      return await getJSON('/_sim/thread?customer=' + encodeURIComponent(customer) + (line ? '&line=' + encodeURIComponent(line) : ''));
    } catch (e) {
      return { error: e.message };
    }
  }

  function connect() {
    setLive('connecting');
    let es;
    try {
      es = new EventSource('/_sim/events');
    } catch (e) {
      setLive('disconnected');
      setTimeout(connect, 3000);
      return;
    }
    es.onopen = () => { setLive('connected'); refresh(); };
    es.onmessage = (ev) => {
      setLive('connected');
      try { S.lastEvent = JSON.parse(ev.data)?.version ?? null; } catch { S.lastEvent = null; }
      if (S.lastEvent != null) document.body.dataset.version = String(S.lastEvent);
      refresh();
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        setLive('disconnected');
        setTimeout(connect, 3000);
      } else {
        setLive('connecting');
      }
    };
  }

  function setLive(st) {
    els.liveDot.dataset.state = st;
    els.liveLabel.textContent = { connected: 'live', connecting: 'reconnecting…', disconnected: 'offline' }[st] ?? st;
  }

  // ---------------------------------------------------------------- keyed rendering
  // items: [{ key, sig, build }] — reuse the element when its signature is unchanged.
  function reconcile(box, items) {
    const old = new Map();
    for (const el of Array.from(box.children)) if (el._key != null) old.set(el._key, el);
    const keep = new Set();
    let prev = null;
    for (const it of items) {
      let el = old.get(it.key);
      if (!el || el._sig !== it.sig) {
        const fresh = it.build();
        fresh._key = it.key;
        fresh._sig = it.sig;
        if (el) el.replaceWith(fresh);
        el = fresh;
      }
      keep.add(it.key);
      const want = prev ? prev.nextSibling : box.firstChild;
      if (el !== want) box.insertBefore(el, want);
      prev = el;
    }
    for (const el of Array.from(box.children)) if (!keep.has(el._key)) el.remove();
  }

  function stickyBox(box) {
    box._stick = true;
    box.addEventListener('scroll', () => {
      box._stick = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    }, { passive: true });
    if ('ResizeObserver' in window) {
      new ResizeObserver(() => { if (box._stick) box.scrollTop = box.scrollHeight; }).observe(box);
    }
    box.addEventListener('load', (e) => {
      if (e.target.tagName === 'IMG' && box._stick) box.scrollTop = box.scrollHeight;
    }, true);
  }
  function withStick(box, fn, force) {
    const stick = force || box._stick !== false;
    fn();
    if (stick) { box.scrollTop = box.scrollHeight; box._stick = true; }
  }

  // ---------------------------------------------------------------- render: everything
  function render() {
    if (!S.state) return;
    renderSettings();
    renderSelects();
    renderHeaders();
    withStick(els.smsThread, renderSms, els.smsThread._force);
    els.smsThread._force = false;
    if (S.swiping) {
      S.waPending = true; // re-rendered when the swipe ends
    } else {
      withStick(els.waChat, renderWa, els.waChat._force);
      els.waChat._force = false;
    }
    renderReplyBar();
    renderThread();
    store.set('customer', S.customer);
    store.set('agent', S.agent);
    store.set('line', S.lineId);
  }

  function renderSettings() {
    const st = S.state.settings;
    const rate = Number(st.fail_rate ?? 0);
    const failing = Object.entries(st.failing_numbers && typeof st.failing_numbers === 'object' ? st.failing_numbers : {});
    const closed = arr(st.closed_windows);
    const chip = (label, value, hot, testid) => h('span', { class: 'chip' + (hot ? ' hot' : ''), 'data-testid': testid }, h('b', null, label), ' ', value);
    const injected = S.state.failures_injected;
    const sig = JSON.stringify([st, S.state.opted_out, S.state.line.agents, injected]);
    if (els.settings._sig === sig) return;
    els.settings._sig = sig;
    els.settings.replaceChildren(
      chip('fail rate', `${Math.round(rate * 1000) / 10}%${rate > 0 ? ` · ${injected} failed so far` : ''}`, rate > 0, 'setting-fail-rate'),
      chip('failing numbers', failing.length ? failing.map(([n, code]) => `${pretty(n)} → ${code}`).join(', ') : 'none', failing.length > 0, 'setting-failing-numbers'),
      chip('closed 24h windows', closed.length ? closed.map((a) => agentName(a) ?? pretty(a)).join(', ') : 'none', closed.length > 0, 'setting-closed-windows'),
      chip('opted out', S.state.opted_out.length ? S.state.opted_out.map(pretty).join(', ') : 'none', S.state.opted_out.length > 0, 'setting-opted-out'),
    );
  }

  function fillSelect(sel, options, value) {
    const sig = JSON.stringify(options);
    if (sel._sig !== sig) {
      sel._sig = sig;
      sel.replaceChildren(...options.map(([v, label]) => h('option', { value: v }, label)));
      if (!options.length) sel.append(h('option', { value: '' }, '— none —'));
    }
    sel.value = value ?? '';
  }

  function renderSelects() {
    fillSelect(els.lineSelect, S.state.lines.map((l) => [l.id, `${pretty(l.sms_number)} · ${providerName(l.provider)}`]), S.lineId);
    fillSelect(els.customerSelect, customerList().map((c) => [c, pretty(c)]), S.customer);
    fillSelect(els.agentSelect, S.state.line.agents.map((a) => [a.wa_id, a.name ? `${a.name} · ${pretty(a.wa_id)}` : pretty(a.wa_id)]), S.agent);
  }

  function renderHeaders() {
    const num = S.state.line.sms_number;
    els.smsName.textContent = num ? pretty(num) : 'Business';
    els.smsName.title = num ? `line ${S.state.line.id}, by ${providerName(S.state.line.provider)}` : '';
    els.waName.textContent = num ? `Business · ${pretty(num)}` : 'Business';
    const agent = agentOf(S.agent);
    if (!agent) {
      els.waSub.textContent = 'no agent on this line';
    } else if (agent.number_hidden) {
      els.waSub.textContent = `chatting as ${agent.name ?? 'agent'} · ${agent.username ?? 'username'} (number hidden)`;
    } else {
      els.waSub.textContent = `chatting as ${agentLabel(S.agent)}`;
    }
    els.waSub.title = agent?.user_id ? `business-scoped user id ${agent.user_id}` : '';
    els.agentUsername.disabled = !agent;
    const shown = agent?.number_hidden === true;
    const wanted = S.hiddenWanted;
    if (wanted && wanted.agent === S.agent && wanted.hidden === shown) S.hiddenWanted = null;
    els.agentUsername.checked = wanted && wanted.agent === S.agent ? wanted.hidden : shown;
    els.threadCustomer.textContent = S.customer ? `${pretty(S.customer)} · line ${S.state.line.id ?? '—'}` : '—';
  }

  // ---------------------------------------------------------------- render: the SMS phone
  function renderSms() {
    const number = S.state.line.sms_number;
    const msgs = S.customer ? S.state.sms.filter((m) => m.customer === S.customer && m.line === number) : [];
    let lastIn = -1;
    msgs.forEach((m, i) => { if (m.direction === 'in') lastIn = i; });
    const items = [];
    let prevAt = null;
    msgs.forEach((m, i) => {
      const t = parseAt(m.at);
      if (t && (!prevAt || t - prevAt > 15 * 60e3)) {
        const label = `${dayName(t)} ${hhmm(m.at)}`;
        items.push({ key: 'sep-' + m.id, sig: label, build: () => h('div', { class: 'sms-sep' }, h('b', null, label.split(' ').slice(0, -1).join(' ')), ' ', hhmm(m.at)) });
      }
      if (t) prevAt = t;
      const next = msgs[i + 1];
      const tail = !next || next.direction !== m.direction;
      const latest = i === lastIn;
      items.push({ key: 'sms-' + m.id, sig: JSON.stringify([m, latest, tail]), build: () => smsRow(m, latest, tail) });
    });
    if (!msgs.length) {
      const sig = String(S.customer);
      items.push({
        key: 'empty', sig,
        build: () => h('div', { class: 'empty-hint' },
          S.customer
            ? [h('b', null, 'No messages yet'), h('br'), `Text the business from ${pretty(S.customer)} below.`]
            : [h('b', null, 'No customer yet'), h('br'), 'Add a +E.164 number above to pick up this phone.']),
      });
    }
    reconcile(els.smsThread, items);
  }

  function smsRow(m, latest, tail) {
    const mine = m.direction === 'in'; // customer → business
    const failedOut = !mine && (m.status === 'failed' || m.status === 'undelivered');
    const ws = m.webhook_status;
    const notDelivered = mine && ws != null && ws !== 200;
    const row = h('div', {
      class: `sms-row ${mine ? 'mine' : 'theirs'}${tail ? ' tail' : ''}${notDelivered ? ' not-delivered' : ''}${failedOut ? ' failed' : ''}`,
      'data-testid': 'sms-' + m.id, 'data-role': 'sms-message', 'data-direction': m.direction ?? '', 'data-status': m.status ?? '',
      title: hhmm(m.at),
    });
    const media = arr(m.media);
    for (const md of media) row.append(mediaEl(md, 'sms-media'));
    if (m.body || !media.length) {
      const b = h('div', { class: 'sms-bubble', 'data-role': 'bubble' }, m.body ?? '');
      if (notDelivered) row.append(h('div', { class: 'sms-line' }, b, h('span', { class: 'sms-bang', title: `The bridge's webhook answered ${ws}` }, '!')));
      else row.append(b);
    }
    if (mine && m.note) {
      row.append(h('div', { class: 'sms-note muted', 'data-role': 'sms-status', title: m.note }, m.note));
    } else if (mine) {
      if (notDelivered) row.append(h('div', { class: 'sms-note bad', 'data-role': 'sms-status', title: `webhook_status ${ws}` }, 'Not Delivered'));
      else if (ws == null && latest) row.append(h('div', { class: 'sms-note', 'data-role': 'sms-status' }, 'Sending…'));
      else if (latest) row.append(h('div', { class: 'sms-note', 'data-role': 'sms-status' }, 'Delivered'));
    } else if (failedOut) {
      const why = m.event_type ?? (m.error_code != null ? `error ${m.error_code}` : null);
      row.append(h('div', { class: 'sms-note muted', 'data-role': 'sms-status' }, `${m.status}${why ? ` · ${why}` : ''}`));
    }
    return row;
  }

  function mediaName(md) {
    if (md.name) return md.name;
    if (md.filename) return md.filename;
    const last = String(md.url ?? '').split(/[?#]/)[0].split('/').filter(Boolean).pop();
    return last || md.content_type || 'file';
  }

  function mediaEl(md, cls) {
    md = md || {};
    const type = String(md.content_type ?? md.mime_type ?? '');
    const src = md.preview_url || null;
    if (src && (type.startsWith('image/') || (!type && /\.(png|jpe?g|gif|webp)$/i.test(src)))) {
      return h('a', { class: cls + ' img', href: src, target: '_blank', rel: 'noopener', draggable: 'false' },
        h('img', { src, alt: md.caption || 'photo', loading: 'lazy', draggable: 'false' }));
    }
    const kindIcon = type.startsWith('video/') ? '🎬' : type.startsWith('audio/') ? '🎵' : type.startsWith('image/') ? '🖼️' : null;
    const chip = h(src || md.url ? 'a' : 'div', {
      class: cls + ' file-chip', href: src || md.url || null, target: '_blank', rel: 'noopener', draggable: 'false',
    },
    kindIcon ? h('span', { class: 'fc-icon emoji' }, kindIcon) : icon('doc', 'fc-icon'),
    h('span', { class: 'fc-text' }, h('span', { class: 'fc-name' }, mediaName(md)), h('span', { class: 'fc-type' }, type || 'file')));
    return chip;
  }

  // ---------------------------------------------------------------- render: the agent's WhatsApp
  function templateText(t) {
    const p = arr(t?.parameters).map((x) => (typeof x === 'object' && x ? (x.text ?? JSON.stringify(x)) : String(x)));
    if (t?.name === 'new_customer_message' || p.length === 3) return `New SMS ${p[0] ?? ''} from ${p[1] ?? ''}: ${p.slice(2).join(' ')}`;
    return p.join(' · ') || t?.name || 'template';
  }

  function bodyText(m) {
    if (m.kind === 'template') return templateText(m.template);
    if (MEDIA_KINDS.has(m.kind)) return m.media?.caption ?? m.text ?? '';
    return m.text ?? '';
  }

  function summary(m) {
    switch (m.kind) {
      case 'image': return '📷 ' + (m.media?.caption || m.text || 'Photo');
      case 'video': return '🎬 ' + (m.media?.caption || m.text || 'Video');
      case 'audio': return '🎵 Audio';
      case 'document': return '📄 ' + (m.media?.caption || m.text || mediaName(m.media || {}));
      case 'sticker': return 'Sticker';
      default: return firstLine(bodyText(m)) || m.kind;
    }
  }

  function quoteInfo(wamid) {
    const q = S.waById.get(wamid);
    if (!q) return { exists: false, author: 'Message', line: 'Original message not in this chat' };
    return { exists: true, author: q.direction === 'from_agent' ? 'You' : 'Business', line: summary(q) };
  }

  function renderWa() {
    const all = S.agent ? S.state.whatsapp.filter((m) => String(m.agent) === S.agent) : [];
    S.waById = new Map(all.map((m) => [m.id, m]));
    const reactions = new Map();
    for (const m of all) {
      if (m.kind !== 'reaction' || !m.reaction_to) continue;
      const r = reactions.get(m.reaction_to) ?? new Map();
      if (m.emoji) r.set(m.direction, m.emoji); else r.delete(m.direction);
      reactions.set(m.reaction_to, r);
    }
    S.waReactions = reactions;
    const answered = new Set(all.filter((m) => REPLY_KINDS.has(m.kind) && m.context).map((m) => m.context));
    const msgs = all.filter((m) => m.kind !== 'reaction');

    const items = [{
      key: 'notice', sig: 'n',
      build: () => h('div', { class: 'wa-notice' }, '🔒 Simulated WhatsApp. Messages here come from the bridge, which relays customers\' SMS; swipe a message right to reply to it.'),
    }];
    let prevDay = null;
    msgs.forEach((m, i) => {
      const t = parseAt(m.at);
      if (t && dayKey(t) !== prevDay) {
        prevDay = dayKey(t);
        const label = dayName(t);
        items.push({ key: 'day-' + prevDay, sig: label, build: () => h('div', { class: 'wa-day' }, h('span', null, label)) });
      }
      const prev = msgs[i - 1];
      const first = !prev || prev.direction !== m.direction || (t && parseAt(prev.at) && dayKey(parseAt(prev.at)) !== dayKey(t));
      const r = reactions.get(m.id);
      const react = r && r.size ? Array.from(r.values()).join('') : '';
      const quote = m.context ? quoteInfo(m.context) : null;
      const o = { first, react, quote, used: answered.has(m.id) };
      // The signature holds only what the row shows (a read/delivered status change must not
      // rebuild the element, e.g. while the agent is swiping it).
      const shown = m.direction === 'to_agent' && m.status !== 'failed' ? { ...m, status: undefined } : m;
      items.push({ key: 'wa-' + m.id, sig: JSON.stringify([shown, o]), build: () => waRow(m, o) });
    });
    if (S.agent && !msgs.length) {
      items.push({ key: 'empty', sig: S.agent, build: () => h('div', { class: 'empty-hint wa' }, h('b', null, 'No messages yet'), h('br'), 'Text the business from the customer\'s phone: the bridge forwards it here.') });
    }
    reconcile(els.waChat, items);
    maybeMarkRead(msgs);
  }

  function waMeta(m, onMedia) {
    const out = m.direction === 'from_agent';
    const meta = h('span', { class: 'wa-meta' + (onMedia ? ' on-media' : ''), 'data-role': 'meta' }, h('span', { class: 'wa-time' }, hhmm(m.at)));
    if (out) {
      const ws = m.webhook_status;
      if (m.read_by_business === 'marked') meta.append(h('span', { class: 'wa-ticks read', 'data-role': 'ticks', 'data-state': 'read', title: 'Read by the bridge: delivered to the customer' }, icon('ticks')));
      else if (m.read_by_business) meta.append(h('span', { class: 'wa-ticks read', 'data-role': 'ticks', 'data-state': 'read-earlier', title: 'Read: the bridge marked a later message read, and WhatsApp marks the earlier ones with it' }, icon('ticks')));
      else if (ws === 200) meta.append(h('span', { class: 'wa-ticks', 'data-role': 'ticks', 'data-state': 'ok', title: 'The bridge accepted it (webhook 200)' }, icon('ticks')));
      else if (ws == null) meta.append(h('span', { class: 'wa-ticks pending', 'data-role': 'ticks', 'data-state': 'pending', title: 'Sending to the bridge…' }, icon('clock')));
      else meta.append(h('span', { class: 'wa-ticks bad', 'data-role': 'ticks', 'data-state': 'error', title: `The bridge's webhook answered ${ws}` }, icon('warn')));
    }
    return meta;
  }

  function quoteEl(wamid, q) {
    return h('div', {
      class: 'wa-quote' + (q.exists ? '' : ' missing') + (q.author === 'You' ? ' you' : ''), 'data-role': 'quote', 'data-quote': wamid,
      title: q.exists ? 'Show the original message' : null,
      onclick: (e) => { if (q.exists) { e.stopPropagation(); scrollToWa(wamid); } },
    }, h('span', { class: 'wa-quote-author' }, q.author), h('span', { class: 'wa-quote-line', html: waFormat(q.line) }));
  }

  function waRow(m, o) {
    const out = m.direction === 'from_agent';
    const failed = !out && m.status === 'failed';
    const row = h('div', {
      class: `wa-row ${out ? 'out' : 'in'}${o.first ? ' first' : ''}${o.react ? ' has-reaction' : ''}${failed ? ' failed' : ''} kind-${m.kind}`,
      'data-testid': 'wa-' + m.id, 'data-role': 'wa-message', 'data-direction': m.direction ?? '', 'data-kind': m.kind ?? '', 'data-id': m.id,
    });
    const stack = h('div', { class: 'wa-stack' });
    const sticker = m.kind === 'sticker';
    const bubble = h('div', { class: 'wa-bubble' + (sticker ? ' sticker' : ''), 'data-role': 'bubble' });
    if (o.quote) bubble.append(quoteEl(m.context, o.quote));
    if (m.kind === 'template') {
      bubble.append(h('div', { class: 'wa-label', title: m.template?.name ? `template ${m.template.name} (${m.template.language ?? ''})` : null }, icon('tmpl'), 'template'));
    }
    const body = h('div', { class: 'wa-body' });
    const text = bodyText(m);
    const hasMedia = MEDIA_KINDS.has(m.kind) && m.media;
    if (hasMedia) body.append(mediaEl(m.media, 'wa-media'));
    if (text) {
      const t = h('div', { class: 'wa-text', 'data-role': 'text', html: waFormat(text) });
      t.append(h('span', { class: 'wa-spacer' + (out ? ' out' : ''), 'aria-hidden': 'true' }));
      body.append(t);
    }
    body.append(waMeta(m, hasMedia && !text && (m.kind === 'image' || sticker)));
    bubble.append(body);
    if (m.kind === 'list' && m.list) {
      bubble.append(h('button', {
        type: 'button', class: 'wa-listbtn', 'data-testid': 'list-open-' + m.id,
        onclick: (e) => { e.stopPropagation(); openList(m); },
      }, icon('list'), m.list.button || 'Choose'));
    }
    stack.append(bubble);
    if (m.kind === 'buttons') {
      const bs = h('div', { class: 'wa-buttons' + (o.used ? ' used' : '') });
      for (const b of arr(m.buttons).slice(0, 3)) {
        bs.append(h('button', {
          type: 'button', class: 'wa-btn', 'data-testid': 'wa-button-' + b.id, 'data-button-id': b.id,
          onclick: (e) => { e.stopPropagation(); pressButton(m, b, e.currentTarget); },
        }, icon('reply'), b.title ?? b.id));
      }
      stack.append(bs);
    }
    if (o.react) stack.append(h('span', { class: 'wa-reaction', 'data-testid': 'reaction-' + m.id, 'data-role': 'reaction' }, o.react));
    if (failed) {
      const err = m.error ? `${m.error.code ?? ''} ${m.error.title ?? ''}`.trim() : '';
      stack.append(h('div', { class: 'wa-fail', 'data-role': 'wa-status' }, icon('warn'), `Not delivered to WhatsApp${err ? ` · ${err}` : ''}`));
    }

    const actions = h('div', { class: 'wa-actions' },
      h('button', { type: 'button', class: 'wa-act', 'data-testid': 'reply-' + m.id, title: 'Reply', 'aria-label': 'Reply', onclick: (e) => { e.stopPropagation(); setReply(m.id); } }, icon('reply')));
    if (!out) {
      actions.append(h('button', { type: 'button', class: 'wa-act', 'data-testid': 'react-' + m.id, title: 'React', 'aria-label': 'React', onclick: (e) => { e.stopPropagation(); openReactMenu(m, bubble); } }, icon('smile')));
    }
    const swipeHint = h('span', { class: 'wa-swipe-hint' }, icon('reply'));
    row.append(swipeHint, stack, actions);
    attachSwipe(row, bubble, m);
    return row;
  }

  function scrollToWa(wamid) {
    const el = tid('wa-' + wamid);
    if (!el) return;
    el.scrollIntoView({ block: 'center', behavior: 'smooth' });
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
    setTimeout(() => el.classList.remove('flash'), 1600);
  }

  // Swipe right to reply (pointer events: mouse, pen and touch), long-press to react.
  function attachSwipe(row, bubble, m) {
    let start = null;
    let dx = 0;
    let dragging = false;
    let lpTimer = null;
    let swallowClick = false;
    const reset = () => {
      clearTimeout(lpTimer);
      row.classList.remove('swiping', 'swipe-armed');
      row.classList.add('swipe-release');
      row.style.setProperty('--swipe', '0px');
      els.waChat.classList.remove('no-select');
      setTimeout(() => row.classList.remove('swipe-release'), 220);
      start = null;
      dragging = false;
      dx = 0;
      if (S.swiping === row) {
        S.swiping = null;
        if (S.waPending) { S.waPending = false; setTimeout(render, 0); }
      }
    };
    bubble.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || e.target.closest('button, a.file-chip, .wa-quote')) return;
      start = { x: e.clientX, y: e.clientY, id: e.pointerId };
      dx = 0;
      dragging = false;
      clearTimeout(lpTimer);
      if (m.direction === 'to_agent') {
        lpTimer = setTimeout(() => {
          if (start && !dragging) { swallowClick = true; openReactMenu(m, bubble); start = null; }
        }, 550);
      }
    });
    bubble.addEventListener('pointermove', (e) => {
      if (!start || e.pointerId !== start.id) return;
      const mx = e.clientX - start.x;
      const my = e.clientY - start.y;
      if (!dragging) {
        if (Math.abs(mx) < 8 && Math.abs(my) < 8) return;
        clearTimeout(lpTimer);
        if (mx <= 0 || Math.abs(my) > Math.abs(mx)) { start = null; return; } // scrolling, or a left drag
        dragging = true;
        S.swiping = row;
        try { bubble.setPointerCapture(e.pointerId); } catch { /* pointer already gone */ }
        row.classList.add('swiping');
        els.waChat.classList.add('no-select');
        window.getSelection()?.removeAllRanges();
      }
      e.preventDefault();
      dx = Math.max(0, Math.min(mx, 96));
      row.style.setProperty('--swipe', `${dx}px`);
      row.classList.toggle('swipe-armed', dx >= SWIPE_PX);
    });
    bubble.addEventListener('pointerup', (e) => {
      if (!start || e.pointerId !== start.id) { clearTimeout(lpTimer); return; }
      const fire = dragging && dx >= SWIPE_PX;
      if (dragging) swallowClick = true;
      reset();
      if (fire) setReply(m.id);
    });
    bubble.addEventListener('pointercancel', reset);
    bubble.addEventListener('click', (e) => {
      if (swallowClick) { swallowClick = false; e.preventDefault(); e.stopPropagation(); }
    }, true);
    bubble.addEventListener('contextmenu', (e) => { if (m.direction === 'to_agent' && e.pointerType !== 'mouse') e.preventDefault(); });
    bubble.addEventListener('dragstart', (e) => e.preventDefault());
  }

  function setReply(wamid) {
    S.replyTo = wamid || null;
    renderReplyBar();
    if (wamid) els.agentInput.focus();
  }

  function renderReplyBar() {
    const bar = els.replyBar;
    if (S.replyTo && !S.waById.has(S.replyTo)) S.replyTo = null;
    if (!S.replyTo) {
      bar.hidden = true;
      bar.replaceChildren();
      bar._sig = null;
      return;
    }
    const q = quoteInfo(S.replyTo);
    const sig = JSON.stringify([S.replyTo, q]);
    if (bar._sig === sig && !bar.hidden) return;
    bar._sig = sig;
    bar.hidden = false;
    bar.dataset.replyTo = S.replyTo;
    bar.replaceChildren(
      h('div', { class: 'wa-quote' + (q.author === 'You' ? ' you' : ''), 'data-role': 'quote', onclick: () => scrollToWa(S.replyTo) },
        h('span', { class: 'wa-quote-author' }, `Replying to ${q.author === 'You' ? 'yourself' : q.author}`),
        h('span', { class: 'wa-quote-line', html: waFormat(q.line) })),
      h('button', { type: 'button', class: 'wa-reply-cancel', 'data-testid': 'agent-reply-cancel', 'aria-label': 'Cancel reply', onclick: () => setReply(null) }, icon('close')),
    );
  }

  // Debounced read receipt after new incoming messages were shown.
  const readSent = {};
  let readTimer = null;
  function maybeMarkRead(msgs) {
    const agent = S.agent;
    if (!agent) return;
    let lastIn = null;
    for (const m of msgs) if (m.direction === 'to_agent') lastIn = m;
    if (!lastIn || lastIn.status === 'read' || readSent[agent] === lastIn.id || readTimer) return;
    // At most one read receipt per 800 ms, covering everything shown by then.
    readTimer = setTimeout(() => {
      readTimer = null;
      if (S.agent !== agent) return;
      const shown = S.waById;
      let newest = null;
      for (const m of shown.values()) if (m.direction === 'to_agent' && m.kind !== 'reaction') newest = m;
      readSent[agent] = newest ? newest.id : lastIn.id;
      post('/_sim/agent/read', { agent }).catch((e) => console.warn('read receipt failed', e));
    }, 800);
  }

  // ---------------------------------------------------------------- agent actions
  async function agentSend() {
    const text = els.agentInput.value;
    if (!S.agent || !text.trim()) return;
    const context = S.replyTo;
    els.agentInput.value = '';
    autoGrow();
    setReply(null);
    els.waChat._force = true;
    try {
      await post('/_sim/agent/send', { from: S.agent, text, context: context ?? null });
    } catch (e) {
      els.agentInput.value = text;
      autoGrow();
      if (context) setReply(context);
      toast('agent', `Not sent: ${e.message}`);
    }
    refresh();
  }

  async function pressButton(m, b, btn) {
    if (!S.agent) return;
    btn?.classList.add('pressed');
    els.waChat._force = true;
    try {
      await post('/_sim/agent/button', { from: S.agent, context: m.id, id: b.id, title: b.title ?? '' });
    } catch (e) {
      toast('agent', `Button not sent: ${e.message}`);
    }
    btn?.classList.remove('pressed');
    refresh();
  }

  async function react(m, emoji) {
    try {
      await post('/_sim/agent/react', { from: S.agent, message: m.id, emoji });
    } catch (e) {
      toast('agent', `Reaction not sent: ${e.message}`);
    }
    refresh();
  }

  function openReactMenu(m, anchor) {
    const menu = els.reactMenu;
    const mine = S.waReactions.get(m.id)?.get('from_agent') ?? '';
    menu.replaceChildren(...EMOJIS.map((e) => h('button', {
      type: 'button', class: 'emoji' + (e === mine ? ' on' : ''), 'data-testid': 'react-option-' + e, 'aria-label': `React ${e}`,
      onclick: (ev) => { ev.stopPropagation(); closeReactMenu(); react(m, e === mine ? '' : e); },
    }, e)));
    menu.hidden = false;
    const scr = els.waScreen.getBoundingClientRect();
    const a = anchor.getBoundingClientRect();
    const w = menu.offsetWidth;
    const left = Math.max(8, Math.min(a.left - scr.left, scr.width - w - 8));
    let top = a.top - scr.top - menu.offsetHeight - 6;
    if (top < 70) top = a.bottom - scr.top + 6;
    menu.style.left = `${left}px`;
    menu.style.top = `${top}px`;
    setTimeout(() => document.addEventListener('pointerdown', outsideReact, true), 0);
  }
  function outsideReact(e) {
    if (!els.reactMenu.contains(e.target)) closeReactMenu();
  }
  function closeReactMenu() {
    els.reactMenu.hidden = true;
    document.removeEventListener('pointerdown', outsideReact, true);
  }

  function openList(m) {
    const wrap = els.sheet;
    let pick = null;
    const send = h('button', { type: 'button', class: 'sheet-send', 'data-testid': 'list-send', disabled: true, 'aria-label': 'Send' }, icon('send'));
    const rows = arr(m.list?.rows).map((r) => {
      const radio = h('input', { type: 'radio', name: 'list-pick', value: r.id, 'data-testid': 'list-row-' + r.id });
      radio.addEventListener('change', () => { pick = r; send.disabled = false; });
      return h('label', { class: 'sheet-row' },
        h('span', { class: 'sheet-row-text' }, h('span', { class: 'sheet-row-title' }, r.title ?? r.id), r.description ? h('span', { class: 'sheet-row-desc' }, r.description) : null),
        radio);
    });
    const close = () => { wrap.hidden = true; wrap.replaceChildren(); };
    send.addEventListener('click', async () => {
      if (!pick) return;
      close();
      els.waChat._force = true;
      try {
        await post('/_sim/agent/list', { from: S.agent, context: m.id, id: pick.id, title: pick.title ?? '', description: pick.description ?? '' });
      } catch (e) {
        toast('agent', `Not sent: ${e.message}`);
      }
      refresh();
    });
    wrap.replaceChildren(
      h('div', { class: 'sheet-backdrop', onclick: close }),
      h('div', { class: 'sheet', role: 'dialog', 'aria-label': m.list?.button || 'List' },
        h('div', { class: 'sheet-grip' }),
        h('div', { class: 'sheet-head' },
          h('button', { type: 'button', class: 'sheet-close', 'data-testid': 'list-close', 'aria-label': 'Close', onclick: close }, icon('close')),
          h('span', { class: 'sheet-title' }, m.list?.button || 'Choose')),
        h('div', { class: 'sheet-rows' }, rows.length ? rows : h('div', { class: 'empty-hint' }, 'This list has no rows.')),
        h('div', { class: 'sheet-foot' }, send)),
    );
    wrap.hidden = false;
  }

  // ---------------------------------------------------------------- customer actions
  async function customerSend(text, media) {
    if (!S.customer) { toast('customer', 'Add or pick a customer number first.'); return false; }
    els.smsThread._force = true;
    try {
      await post('/_sim/customer/send', { from: S.customer, to: S.state.line.sms_number || null, text, media: media ? [media] : [] });
      return true;
    } catch (e) {
      toast('customer', `Not sent: ${e.message}`);
      return false;
    } finally {
      refresh();
    }
  }

  function addCustomer(num) {
    const n = num.trim().replace(/[\s().-]/g, '');
    if (!/^\+[1-9]\d{6,14}$/.test(n)) { toast('customer', 'Use a +E.164 number, like +14155550199.'); return false; }
    if (!S.extraCustomers.includes(n)) S.extraCustomers.push(n);
    store.set('extraCustomers', S.extraCustomers);
    S.customer = n;
    els.smsThread._force = true;
    render();
    refresh();
    return true;
  }

  // ---------------------------------------------------------------- files → base64
  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(String(r.result).split(',')[1] || '');
      r.onerror = () => reject(r.error);
      r.readAsDataURL(blob);
    });
  }

  // Big photos are scaled down (max 1600 px, JPEG) so the JSON stays well under request limits.
  async function filePayload(file) {
    let blob = file;
    let type = file.type || 'application/octet-stream';
    let name = file.name || 'photo';
    if (/^image\/(jpeg|png|webp)$/.test(type) && file.size > 1_000_000 && 'createImageBitmap' in window) {
      try {
        const bmp = await createImageBitmap(file);
        const scale = Math.min(1, 1600 / Math.max(bmp.width, bmp.height));
        const c = document.createElement('canvas');
        c.width = Math.round(bmp.width * scale);
        c.height = Math.round(bmp.height * scale);
        c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
        const jpg = await new Promise((res) => c.toBlob(res, 'image/jpeg', 0.85));
        if (jpg) { blob = jpg; type = 'image/jpeg'; name = name.replace(/\.[^.]+$/, '') + '.jpg'; }
      } catch { /* send the original */ }
    }
    return { content_type: type, name, data_base64: await blobToBase64(blob) };
  }

  // ---------------------------------------------------------------- render: thread as stored
  function stateClass(s) {
    if (s === 'sent' || s === 'delivered' || s === 'read' || s === 'done') return 'ok';
    if (s === 'queued' || s === 'sending' || s === 'retry' || s === 'accepted' || s === 'pending') return 'wait';
    if (s === 'failed' || s === 'undelivered' || s === 'dead') return 'bad';
    return 'plain';
  }

  function renderThread() {
    const th = S.thread;
    const head = els.threadHead;
    const list = els.threadList;
    let headKids;
    if (!S.customer) {
      headKids = [h('div', { class: 'th-empty' }, 'Pick or add a customer on the left phone.')];
    } else if (!th || th.error) {
      headKids = [h('div', { class: 'th-empty bad' }, `Couldn't read the thread: ${th?.error ?? 'no answer'}`)];
    } else if (th.handle == null) {
      headKids = [h('div', { class: 'th-empty' }, h('b', null, 'No conversation yet.'), ` When ${pretty(S.customer)} texts, the bridge opens one and gives it a handle like #K7.`)];
    } else {
      const claimed = th.claimed_by;
      headKids = [
        h('div', { class: 'th-title' },
          h('span', { class: 'th-handle', 'data-testid': 'thread-handle' }, `#${String(th.handle).replace(/^#/, '')}`),
          h('span', { class: 'badge ' + (th.open ? 'open' : 'closed'), 'data-testid': 'thread-open' }, th.open ? 'open' : 'closed'),
          th.opted_out ? h('span', { class: 'badge opted', 'data-testid': 'thread-opted-out' }, 'opted out') : null,
          h('span', { class: 'th-claim', 'data-testid': 'thread-claimed' }, claimed ? ['claimed by ', h('b', null, agentName(claimed) ?? claimed)] : 'unclaimed')),
        h('div', { class: 'th-sub' }, `${pretty(S.customer)} · ${arr(th.messages).length} message${arr(th.messages).length === 1 ? '' : 's'}`),
      ];
    }
    const hsig = JSON.stringify([S.customer, th && { ...th, messages: arr(th.messages).length }]);
    if (head._sig !== hsig) { head._sig = hsig; head.replaceChildren(...headKids); }

    const msgs = th && !th.error ? arr(th.messages) : [];
    withStick(list, () => reconcile(list, msgs.map((m, i) => ({
      key: m.message_id ?? `i${i}`,
      sig: JSON.stringify(m) + (S.state?.line.agents.length ?? 0),
      build: () => threadMsg(m),
    }))), list._force);
    list._force = false;
  }

  function threadMsg(m) {
    const inbound = m.direction === 'inbound';
    const who = inbound ? 'customer' : (m.agent ? agentLabel(m.agent) : 'agent');
    const legs = arr(m.legs);
    const table = h('div', { class: 'legs-wrap' }, h('table', { class: 'legs' },
      h('thead', null, h('tr', null, ...['kind', 'to', 'state', 'status', 'provider id', 'error'].map((c) => h('th', null, c)))),
      h('tbody', null, legs.length ? legs.map((l) => {
        const err = l.error ? [l.error.class, l.error.code, l.error.reason].filter((x) => x != null && x !== '').join(' ') : '';
        const toName = agentName(l.to);
        return h('tr', { 'data-role': 'leg', 'data-state': l.state ?? '', 'data-status': l.status ?? '', 'data-kind': l.kind ?? '' },
          h('td', { 'data-field': 'kind' }, h('code', { html: esc(l.kind ?? '').replace(/_/g, '_<wbr>') })),
          h('td', { 'data-field': 'to', title: l.to ?? '' }, h('span', { class: 'mono' }, l.to ?? ''), toName ? h('span', { class: 'muted to-name' }, toName) : null),
          h('td', { 'data-field': 'state' }, h('span', { class: 'st ' + stateClass(l.state) }, l.state ?? '')),
          h('td', { 'data-field': 'status' }, l.status ? h('span', { class: 'st ' + stateClass(l.status) }, l.status) : h('span', { class: 'muted' }, '—')),
          h('td', { 'data-field': 'provider_id', title: l.provider_id ?? '' }, l.provider_id ? h('span', { class: 'mono' }, shortId(l.provider_id)) : h('span', { class: 'muted' }, '—')),
          h('td', { 'data-field': 'error', class: err ? 'err' : '' }, err || h('span', { class: 'muted' }, '—')));
      }) : h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'no delivery legs')))));
    return h('div', { class: 'th-msg ' + (inbound ? 'inbound' : 'outbound'), 'data-role': 'thread-message', 'data-direction': m.direction ?? '', 'data-id': m.message_id ?? '' },
      h('div', { class: 'th-msg-head' },
        h('span', { class: 'th-arrow', title: inbound ? 'inbound: customer → agents' : 'outbound: agent → customer' }, inbound ? '↘' : '↗'),
        h('span', { class: 'th-dir' }, inbound ? 'from ' : 'to customer, by '),
        h('b', null, who),
        h('span', { class: 'th-time' }, `${hhmm(m.at)}${m.message_id ? ' · ' : ''}`, m.message_id ? h('span', { class: 'mono', title: m.message_id }, shortId(m.message_id)) : null)),
      h('div', { class: 'th-body', 'data-role': 'thread-body' }, m.body ?? ''),
      table);
  }

  // ---------------------------------------------------------------- misc UI
  const toastTimers = {};
  function toast(where, text) {
    const el = where === 'agent' ? els.agentToast : els.customerToast;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimers[where]);
    toastTimers[where] = setTimeout(() => { el.hidden = true; }, 5000);
  }

  function autoGrow() {
    const t = els.agentInput;
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight, 120)}px`;
  }

  function tickClock() {
    const d = new Date();
    for (const el of document.querySelectorAll('[data-clock]')) el.textContent = `${d.getHours()}:${pad(d.getMinutes())}`;
  }

  // ---------------------------------------------------------------- wiring
  function init() {
    els = {
      liveDot: tid('live-dot'), liveLabel: tid('live-label'), settings: tid('settings'),
      lineSelect: tid('line-select'), customerSelect: tid('customer-select'), customerNew: tid('customer-new-number'), customerAddForm: tid('customer-add-form'),
      smsName: tid('sms-line-number'), smsThread: tid('customer-thread'), customerForm: tid('customer-form'),
      customerInput: tid('customer-input'), customerAttach: tid('customer-attach'), customerFile: tid('customer-file'), customerToast: tid('customer-toast'),
      agentSelect: tid('agent-select'), agentUsername: tid('agent-username'), waName: tid('wa-business-name'), waSub: tid('wa-business-sub'), waChat: tid('agent-chat'),
      waScreen: $('.wa-screen'), replyBar: tid('agent-replying'), agentForm: tid('agent-form'), agentInput: tid('agent-input'),
      agentAttach: tid('agent-attach'), agentFile: tid('agent-file'), agentToast: tid('agent-toast'),
      reactMenu: tid('react-menu'), sheet: tid('list-sheet'),
      threadCustomer: tid('thread-customer'), threadHead: tid('thread-head'), threadList: tid('thread-messages'),
    };
    for (const el of document.querySelectorAll('[data-icon]')) el.append(icon(el.dataset.icon));
    for (const el of document.querySelectorAll('[data-icons]')) el.append(icon('icons'));
    stickyBox(els.smsThread);
    stickyBox(els.waChat);
    stickyBox(els.threadList);
    tickClock();
    setInterval(tickClock, 20e3);

    els.lineSelect.addEventListener('change', () => {
      S.lineId = els.lineSelect.value || null;
      S.state = { ...S.state, line: S.state.lines.find((l) => l.id === S.lineId) ?? S.state.line };
      S.state.opted_out = S.state.line.opted_out ?? S.state.opted_out;
      ensureSelections();
      S.replyTo = null;
      els.smsThread._force = true;
      els.waChat._force = true;
      els.threadList._force = true;
      S.thread = null;
      render();
      refresh();
    });
    els.customerSelect.addEventListener('change', () => {
      S.customer = els.customerSelect.value || null;
      els.smsThread._force = true;
      els.threadList._force = true;
      S.thread = null;
      render();
      refresh();
    });
    els.customerAddForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (addCustomer(els.customerNew.value)) els.customerNew.value = '';
    });
    els.customerForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = els.customerInput.value;
      if (!text.trim()) return;
      els.customerInput.value = '';
      if (!(await customerSend(text, null))) els.customerInput.value = text;
    });
    els.customerAttach.addEventListener('click', () => els.customerFile.click());
    els.customerFile.addEventListener('change', async () => {
      const f = els.customerFile.files?.[0];
      els.customerFile.value = '';
      if (!f) return;
      const text = els.customerInput.value;
      els.customerInput.value = '';
      if (!(await customerSend(text, await filePayload(f)))) els.customerInput.value = text;
    });

    els.agentSelect.addEventListener('change', () => {
      S.agent = els.agentSelect.value || null;
      S.replyTo = null;
      els.waChat._force = true;
      closeReactMenu();
      els.sheet.hidden = true;
      render();
    });
    els.agentUsername.addEventListener('change', async () => {
      const agent = S.agent;
      const hidden = els.agentUsername.checked;
      if (!agent) return;
      S.hiddenWanted = { agent, hidden };
      try {
        await post('/_sim/agent/username', { agent, number_hidden: hidden });
      } catch (e) {
        S.hiddenWanted = null;
        els.agentUsername.checked = !hidden;
        toast('agent', `Couldn't change the username setting: ${e.message}`);
      }
      refresh();
    });
    els.agentForm.addEventListener('submit', (e) => { e.preventDefault(); agentSend(); });
    els.agentInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); agentSend(); }
      if (e.key === 'Escape' && S.replyTo) setReply(null);
    });
    els.agentInput.addEventListener('input', autoGrow);
    els.agentAttach.addEventListener('click', () => els.agentFile.click());
    els.agentFile.addEventListener('change', async () => {
      const f = els.agentFile.files?.[0];
      els.agentFile.value = '';
      if (!f || !S.agent) return;
      const caption = els.agentInput.value;
      const context = S.replyTo;
      els.agentInput.value = '';
      autoGrow();
      setReply(null);
      els.waChat._force = true;
      try {
        const p = await filePayload(f);
        await post('/_sim/agent/media', { from: S.agent, context: context ?? null, caption, ...p });
      } catch (e) {
        els.agentInput.value = caption;
        toast('agent', `Photo not sent: ${e.message}`);
      }
      refresh();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { closeReactMenu(); if (!els.sheet.hidden) { els.sheet.hidden = true; els.sheet.replaceChildren(); } }
    });
    els.waChat.addEventListener('scroll', closeReactMenu, { passive: true });

    connect();
    refresh();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
