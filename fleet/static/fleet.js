// The fleet page (fleet/doc.go): one page of gateways at a time.
(() => {
  'use strict';
  const PAGE = 20;            // gateways per page
  const POLL_MS = 3000;       // list refresh
  const KEEP_MS = 10 * 60e3;  // chart window
  const st = { q: '', offset: 0, total: 0, shown: new Map(), ws: null, window: '' };
  const $ = (id) => document.getElementById(id);

  function fmtAge(ts, now) {
    if (!ts) return 'never';
    const s = Math.max(0, (now - Date.parse(ts)) / 1000);
    if (s < 90) return Math.round(s) + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function counts(c) {
    let s = c.received + ' received, ' + c.duplicates + ' dup';
    if (c.pending) s += ', ' + c.pending + ' pending';
    return s + ', ' + c.lost + ' lost';
  }

  async function poll() {
    try {
      const u = '/api/fleet?limit=' + PAGE + '&offset=' + st.offset + '&q=' + encodeURIComponent(st.q);
      const r = await fetch(u, { cache: 'no-store' });
      if (r.ok) render(await r.json());
    } catch (e) { }
  }

  function render(sum) {
    st.total = sum.total;
    $('window').hidden = !sum.archive;
    const now = Date.parse(sum.now);
    $('totals').textContent = sum.online + ' of ' + sum.total + ' online · ' +
      (sum.silent ? sum.silent + ' silent · ' : '') + counts(sum.totals);
    $('totals').dataset.lost = sum.totals.lost;
    const errs = Object.entries(sum.source_errors || {});
    $('source-errors').hidden = !errs.length;
    $('source-errors').textContent = errs.map(([src, e]) => src + ': ' + e).join(' · ');
    const end = Math.min(st.offset + PAGE, sum.total);
    $('range').textContent = sum.total ? (st.offset + 1) + '–' + end + ' of ' + sum.total : '';
    $('prev').disabled = st.offset === 0;
    $('next').disabled = end >= sum.total;
    const main = $('gateways');
    const want = new Set(sum.gateways.map((g) => g.agent));
    for (const [agent, v] of st.shown) {
      if (!want.has(agent)) { v.el.remove(); st.shown.delete(agent); }
    }
    let prev = null;
    for (const g of sum.gateways) {
      let v = st.shown.get(g.agent);
      if (!v) {
        v = newGateway(g.agent);
        st.shown.set(g.agent, v);
        load(v);
      }
      if (prev ? prev.nextSibling !== v.el : main.firstChild !== v.el) main.insertBefore(v.el, prev ? prev.nextSibling : main.firstChild);
      prev = v.el;
      v.el.dataset.state = g.state;
      v.state.textContent = g.state;
      v.state.className = 'pill ' + g.state;
      v.state.title = g.state === 'silent'
        ? 'nothing heard for ' + Math.round(g.silent_after_seconds) + ' s: three times its usual interval, at most fleet.silent_after'
        : '';
      v.seen.textContent = 'last seen ' + fmtAge(g.last_seen, now);
      v.counts.textContent = counts(g);
      v.counts.classList.toggle('bad', g.lost > 0);
      v.el.dataset.lost = g.lost;
      if (g.page && !v.link.href) { v.link.href = g.page; v.link.hidden = false; }
      if (g.sensors !== v.sensors.size) load(v);
    }
    let empty = main.querySelector('.empty');
    if (!sum.gateways.length && !empty) main.append(el('p', 'empty muted', 'No gateway matches yet.'));
    if (sum.gateways.length && empty) empty.remove();
    subscribe();
  }

  function newGateway(agent) {
    const e = el('section', 'gw');
    e.dataset.agent = agent;
    const h = el('header');
    const state = el('span', 'pill');
    const link = el('a', '', 'page');
    link.hidden = true;
    link.target = '_blank';
    link.rel = 'noopener';
    const seen = el('span', 'muted');
    const cnt = el('span', 'muted');
    h.append(el('h2', '', agent), state, seen, cnt, link);
    const cards = el('div', 'cards');
    e.append(h, cards);
    return { agent, el: e, state, seen, counts: cnt, link, cards, sensors: new Map(), series: new Map() };
  }

  async function load(v) {
    try {
      const r = await fetch('/api/fleet/gateway?agent=' + encodeURIComponent(v.agent), { cache: 'no-store' });
      if (!r.ok) return;
      const g = await r.json();
      for (const s of g.sensor_list || []) {
        v.sensors.set(s.sensor, true);
        for (const x of s.series) {
          const s2 = card(v, s.sensor, x.quantity, x.unit);
          s2.pts = x.points.map((p) => ({ t: p[0], v: p[1] }));
          if (x.value !== null) s2.val.textContent = x.value.toFixed(2) + ' ' + x.unit;
          s2.dirty = true;
        }
      }
      if (st.window) loadLong(v);
    } catch (e) { }
  }

  // 24 h and 7 d: min–max band and mean from the archive.
  async function loadLong(v) {
    const win = st.window;
    for (const sensor of v.sensors.keys()) {
      try {
        const u = '/api/fleet/history?window=' + win + '&agent=' + encodeURIComponent(v.agent) + '&sensor=' + encodeURIComponent(sensor);
        const r = await fetch(u, { cache: 'no-store' });
        if (!r.ok || st.window !== win) continue;
        const h = await r.json();
        for (const x of h.series) {
          const s = v.series.get(sensor + '/' + x.quantity);
          if (!s) continue;
          s.long = x.points.map((p) => ({ t: p[0], lo: p[1], v: p[2], hi: p[3] }));
          s.dirty = true;
        }
      } catch (e) { }
    }
  }

  function card(v, sensor, quantity, unit) {
    const key = sensor + '/' + quantity;
    let s = v.series.get(key);
    if (s) return s;
    const c = el('div', 'card');
    c.dataset.series = key;
    const box = el('div', 'chart');
    const canvas = el('canvas');
    box.append(canvas);
    const val = el('div', 'v', '–');
    c.append(el('div', 'muted', key), val, box);
    const cards = [...v.cards.children];
    const after = cards.find((x) => x.dataset.series > key);
    v.cards.insertBefore(c, after || null);
    s = { el: c, canvas, val, unit, pts: [], dirty: true };
    v.series.set(key, s);
    return s;
  }

  function subscribe() {
    const agents = [...st.shown.keys()].sort();
    const msg = JSON.stringify({ agents });
    if (st.ws && st.ws.readyState === 1 && st.ws.sub !== msg) {
      st.ws.send(msg);
      st.ws.sub = msg;
    }
  }

  function connect() {
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/fleet/ws');
    st.ws = ws;
    ws.onopen = () => { ws.sub = ''; subscribe(); document.body.dataset.live = '1'; };
    ws.onmessage = (ev) => {
      const r = JSON.parse(ev.data);
      const v = st.shown.get(r.agent);
      if (!v) return;
      if (!v.sensors.has(r.sensor)) v.sensors.set(r.sensor, true);
      const s = card(v, r.sensor, r.quantity, r.unit);
      const t = Date.parse(r.ts);
      s.pts.push({ t, v: r.value });
      while (s.pts.length && s.pts[0].t < t - KEEP_MS) s.pts.shift();
      if (r.value !== null) s.val.textContent = r.value.toFixed(2) + ' ' + r.unit;
      s.el.dataset.seq = r.seq;
      s.dirty = true;
    };
    ws.onclose = () => { document.body.dataset.live = ''; setTimeout(connect, 2000); };
  }

  function draw(s) {
    const w = s.canvas.parentElement.clientWidth;
    const h = s.canvas.parentElement.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (s.canvas.width !== Math.round(w * dpr)) { s.canvas.width = Math.round(w * dpr); s.canvas.height = Math.round(h * dpr); }
    const g = s.canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const long = st.window !== '' && s.long;
    const pts = (long ? s.long : s.pts).filter((p) => typeof p.v === 'number' && isFinite(p.v));
    s.canvas.dataset.points = pts.length;
    s.canvas.dataset.window = long ? st.window : '';
    if (pts.length < 2) return;
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { lo = Math.min(lo, p.lo ?? p.v); hi = Math.max(hi, p.hi ?? p.v); }
    if (hi - lo < 0.1) { lo -= 0.05; hi += 0.05; }
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
    const X = (p) => (p.t - t0) / Math.max(1, t1 - t0) * w;
    const Y = (v) => h - 2 - (v - lo) / (hi - lo) * (h - 4);
    if (long) {
      g.fillStyle = 'rgba(127, 140, 160, 0.3)';
      g.beginPath();
      pts.forEach((p, i) => { if (i) g.lineTo(X(p), Y(p.hi)); else g.moveTo(X(p), Y(p.hi)); });
      for (let i = pts.length - 1; i >= 0; i--) g.lineTo(X(pts[i]), Y(pts[i].lo));
      g.fill();
    }
    g.strokeStyle = getComputedStyle(document.body).getPropertyValue('--line') || '#0b6bcb';
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => { if (i) g.lineTo(X(p), Y(p.v)); else g.moveTo(X(p), Y(p.v)); });
    g.stroke();
  }

  function frame() {
    for (const v of st.shown.values()) {
      for (const s of v.series.values()) if (s.dirty) { s.dirty = false; draw(s); }
    }
    requestAnimationFrame(frame);
  }

  let timer = null;
  $('q').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.q = $('q').value; st.offset = 0; poll(); }, 200);
  });
  $('window').addEventListener('change', () => {
    st.window = $('window').value;
    for (const v of st.shown.values()) {
      for (const s of v.series.values()) { s.long = null; s.dirty = true; }
      if (st.window) loadLong(v);
    }
  });
  $('prev').onclick = () => { st.offset = Math.max(0, st.offset - PAGE); poll(); };
  $('next').onclick = () => { if (st.offset + PAGE < st.total) { st.offset += PAGE; poll(); } };
  connect();
  poll();
  setInterval(poll, POLL_MS);
  requestAnimationFrame(frame);
})();
