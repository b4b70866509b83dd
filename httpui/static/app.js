// Kelvin live page: cards and charts fed by /api/readings, /ws and
// /api/status. Plain ES2017, no build step, nothing from elsewhere.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const UNITS = { temperature: '°C', humidity: '%RH', pressure: 'Pa' };
  const DECIMALS = { '°C': 2, '%RH': 1, Pa: 0 };
  const MIN_SPAN = { '°C': 1, '°F': 1.8, '%RH': 2, Pa: 100 }; // smallest y range drawn
  const STATUS_EVERY = 2000; // ms
  const ARCHIVE_EVERY = 60e3; // ms: refresh of the long history
  const store = (() => {
    try {
      return window.localStorage;
    } catch (e) {
      return null;
    }
  })();
  const saved = (k, d) => (store && store.getItem('kelvin.' + k)) || d;
  const save = (k, v) => store && store.setItem('kelvin.' + k, v);

  const st = {
    series: new Map(), // "sensor/quantity" -> series
    sensors: new Map(), // id -> SensorStatus
    status: null,
    offset: 0, // server clock minus ours, ms
    historyMs: 3600e3,
    historyMax: 3600,
    windowMs: +saved('window', 3600e3), // the shown window
    fahrenheit: saved('unit', 'C') === 'F',
    archiveAt: 0, // when the long history was last fetched
    link: 'connecting…', // or 'live', 'offline'
  };
  // A window longer than the in-memory history is drawn from the archive.
  const long = () => st.windowMs > st.historyMs;
  const now = () => Date.now() + st.offset;

  // ---- formatting ----
  const pad = (n) => (n < 10 ? '0' : '') + n;
  // Temperatures are shown in °C or °F, as chosen in the page.
  const shownUnit = (unit) => (unit === '°C' && st.fahrenheit ? '°F' : unit);
  const shown = (v, unit) => (unit === '°C' && st.fahrenheit && typeof v === 'number' ? v * 1.8 + 32 : v);
  // fmtNum writes v with d decimals, or in exponent form when that would
  // be long (1e308 is "1.000e308", not 309 digits).
  const fmtNum = (v, d) => (Math.abs(v) >= 1e9 ? v.toExponential(3).replace('e+', 'e') : v.toFixed(d));
  function fmtValue(v, unit) {
    v = shown(v, unit);
    if (typeof v !== 'number' || !isFinite(v)) return '–';
    const d = DECIMALS[unit];
    return fmtNum(v, d === undefined ? 2 : d);
  }
  function fmtDuration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    if (d) return d + ' d ' + h + ' h';
    if (h) return h + ' h ' + m + ' min';
    if (m) return m + ' min ' + s + ' s';
    return s + ' s';
  }
  const fmtAge = (ms) => fmtDuration(ms).replace(/ \d+ s$/, '') + ' ago';

  // ---- series and cards ----
  function series(sensor, quantity, unit) {
    const key = sensor + '/' + quantity;
    let s = st.series.get(key);
    if (s) {
      if (unit && !s.unit) s.unit = unit;
      return s;
    }
    const el = $('card').content.firstElementChild.cloneNode(true);
    s = {
      key, sensor, quantity, unit: unit || UNITS[quantity] || '', pts: [], arch: [], el, dirty: true,
      value: el.querySelector('.value'), age: el.querySelector('.age'),
      status: el.querySelector('.status'), foot: el.querySelector('.foot'),
      canvas: el.querySelector('canvas'), unitEl: el.querySelector('.unit'),
      trend: el.querySelector('.trend'), range: el.querySelector('.range'), csv: el.querySelector('.csv'),
    };
    el.querySelector('.sensor').textContent = sensor;
    el.querySelector('.quantity').textContent = quantity;
    s.unitEl.textContent = shownUnit(s.unit);
    s.csv.addEventListener('click', () => downloadCSV(s));
    st.series.set(key, s);
    // Keep the cards sorted by key.
    const cards = $('cards');
    const after = [...st.series.keys()].sort().indexOf(key);
    const next = [...st.series.keys()].sort()[after + 1];
    cards.insertBefore(el, next ? st.series.get(next).el : null);
    $('empty').hidden = true;
    resizer.observe(s.canvas.parentElement);
    return s;
  }

  // addReading puts r in its series in time order (a back-filled reading
  // goes in its place; the current value stays the newest), unless it is
  // already there (it is when the websocket and /api/readings overlap).
  function addReading(r) {
    if (!r || typeof r.sensor !== 'string' || typeof r.quantity !== 'string') return;
    const s = series(r.sensor, r.quantity, r.unit);
    const t = Date.parse(r.ts);
    if (!isFinite(t)) return;
    const p = { t, v: r.value, r: r.raw, seq: r.seq };
    const last = s.pts[s.pts.length - 1];
    if (!last || t > last.t || (t === last.t && r.seq > last.seq)) s.pts.push(p);
    else {
      let i = firstAt(s.pts, t);
      for (; i < s.pts.length && s.pts[i].t === t; i++) if (s.pts[i].seq === r.seq) return;
      s.pts.splice(i, 0, p);
    }
    trim(s);
    s.dirty = true;
    schedule();
  }

  function trim(s) {
    const cutoff = now() - st.historyMs;
    let n = 0;
    while (n < s.pts.length && s.pts[n].t < cutoff) n++;
    n = Math.max(n, s.pts.length - st.historyMax);
    if (n > 0) s.pts.splice(0, n);
  }

  function cardState(s) {
    const sen = st.sensors.get(s.sensor);
    const last = s.pts.length ? s.pts[s.pts.length - 1].t
      : sen && sen.last_reading ? Date.parse(sen.last_reading) : 0;
    const iv = sen ? sen.interval_seconds * 1000 : 0;
    if (sen && sen.state === 'faulty') {
      return { cls: 'faulty', pill: 'bad', text: 'faulty' + (sen.reason ? ': ' + sen.reason.replace(/_/g, ' ') : ''), last };
    }
    if (last && iv > 0 && now() - last > 3 * iv) return { cls: 'stale', pill: 'warn', text: 'stale', last };
    if (!last) return { cls: 'starting', pill: '', text: (sen && sen.state) || 'waiting', last };
    return { cls: 'ok', pill: 'ok', text: 'ok', last };
  }

  function renderText(s) {
    const p = s.pts[s.pts.length - 1];
    s.value.textContent = p ? fmtValue(p.v, s.unit) : '–';
    s.unitEl.textContent = shownUnit(s.unit);
    renderStats(s);
    const c = cardState(s);
    s.el.className = 'card ' + c.cls;
    s.status.className = 'status pill ' + c.pill;
    s.status.textContent = c.text;
    s.age.textContent = c.last ? fmtAge(now() - c.last) : '';
    const sen = st.sensors.get(s.sensor);
    const foot = [];
    if (sen) {
      if (sen.type) foot.push(sen.type);
      if (sen.interval_seconds) foot.push('every ' + fmtDuration(sen.interval_seconds * 1000));
      foot.push(sen.reads + ' reads, ' + sen.errors + ' errors');
      if (sen.state === 'faulty' && sen.error) foot.push(sen.error);
    }
    s.foot.textContent = foot.join(' · ');
    s.status.title = (sen && sen.error) || '';
  }

  // ---- the shown window ----
  // view returns the points of s in the shown window: the in-memory
  // readings ({t, v, r}) for a short window; for a long one the archive's
  // buckets ({t, v: mean, lo, hi, n}, t the bucket's middle) followed by
  // the readings newer than the last bucket.
  function view(s) {
    const t1 = now();
    const t0 = t1 - st.windowMs;
    if (!long()) return s.pts.slice(firstAt(s.pts, t0));
    const out = [];
    let end = t0;
    for (const b of s.arch) {
      if (b.t >= t0) out.push(b);
      end = Math.max(end, b.end);
    }
    for (let i = firstAt(s.pts, end); i < s.pts.length; i++) out.push(s.pts[i]);
    return out;
  }

  // stats returns min, mean and max over pts (buckets weighted by count).
  function stats(pts) {
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    let n = 0;
    for (const p of pts) {
      if (typeof p.v !== 'number' || !isFinite(p.v)) continue;
      const w = p.n || 1;
      lo = Math.min(lo, p.lo !== undefined ? p.lo : p.v);
      hi = Math.max(hi, p.hi !== undefined ? p.hi : p.v);
      sum += p.v * w;
      n += w;
    }
    return n ? { lo, hi, mean: sum / n } : null;
  }

  // trend compares the newest smoothed value with the one about ten
  // minutes (or the window) before it.
  function trend(s, pts) {
    if (pts.length < 2) return { arrow: '', delta: 0 };
    const last = pts[pts.length - 1];
    const then = pts[Math.max(0, firstAt(pts, last.t - Math.min(600e3, st.windowMs)))];
    const delta = last.v - then.v;
    const thr = (MIN_SPAN[s.unit] || 1) / 10;
    return { arrow: delta > thr ? '↑' : delta < -thr ? '↓' : '→', delta };
  }

  function renderStats(s) {
    const pts = view(s);
    const m = stats(pts);
    const tr = trend(s, pts);
    s.trend.textContent = tr.arrow;
    const d = shown(tr.delta, s.unit) - shown(0, s.unit); // a difference: no °F offset
    s.trend.title = tr.arrow ? (d >= 0 ? '+' : '') + fmtNum(d, DECIMALS[s.unit] === undefined ? 2 : DECIMALS[s.unit]) +
      ' ' + shownUnit(s.unit) + ' over ' + fmtDuration(Math.min(600e3, st.windowMs)) : '';
    s.range.textContent = m
      ? 'min ' + fmtValue(m.lo, s.unit) + ' · mean ' + fmtValue(m.mean, s.unit) + ' · max ' + fmtValue(m.hi, s.unit)
      : '';
  }

  // csv returns the shown window of s as CSV, in the shown unit.
  function csv(s) {
    const u = shownUnit(s.unit);
    const num = (v) => (typeof v === 'number' && isFinite(v) ? String(+shown(v, s.unit).toFixed(6)) : '');
    const rows = [];
    if (long()) {
      rows.push('time,min,mean,max,readings,unit');
      for (const p of view(s)) {
        const t = new Date(p.start !== undefined ? p.start : p.t).toISOString();
        if (p.lo !== undefined) rows.push([t, num(p.lo), num(p.v), num(p.hi), p.n, u].join(','));
        else rows.push([t, num(p.v), num(p.v), num(p.v), 1, u].join(','));
      }
    } else {
      rows.push('time,value,raw,seq,unit');
      for (const p of view(s)) rows.push([new Date(p.t).toISOString(), num(p.v), num(p.r), p.seq, u].join(','));
    }
    return rows.join('\n') + '\n';
  }
  function downloadCSV(s) {
    const url = URL.createObjectURL(new Blob([csv(s)], { type: 'text/csv' }));
    const label = { 300000: '5min', 3600000: '1h', 86400000: '24h', 604800000: '7d' }[st.windowMs] || 'window';
    s.csv.href = url;
    s.csv.download = s.sensor + '-' + s.quantity + '-' + label + '.csv';
    setTimeout(() => URL.revokeObjectURL(url), 60e3);
  }

  // ---- chart ----
  let colors = {};
  function readColors() {
    const cs = getComputedStyle(document.documentElement);
    for (const k of ['fg', 'muted', 'grid', 'line', 'raw']) colors[k] = cs.getPropertyValue('--' + k).trim();
    for (const s of st.series.values()) s.dirty = true;
    schedule();
  }

  // niceStep returns 1, 2 or 5 times a power of ten close to x.
  function niceStep(x) {
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    const f = x / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
  }
  // valueTicks spans lo…hi in nice steps; halved differences keep it
  // finite for values near the largest float.
  function valueTicks(lo, hi, n) {
    const step = niceStep((hi / 2 - lo / 2) / Math.max(1, n)) * 2;
    const min = Math.max(-Number.MAX_VALUE, Math.floor(lo / step) * step);
    const max = Math.min(Number.MAX_VALUE, Math.ceil(hi / step) * step);
    const dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const ticks = [];
    for (let v = min; v <= max + step / 2 && ticks.length < 50; v += step) ticks.push(v);
    return { min, max, ticks, dec };
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800].map((s) => s * 1000);
  function timeTicks(t0, t1, n) {
    const step = TIME_STEPS.find((s) => (t1 - t0) / s <= n) || 86400e3;
    const tz = new Date(t0).getTimezoneOffset() * 60e3; // align to local time
    const ticks = [];
    for (let t = Math.ceil((t0 - tz) / step) * step + tz; t <= t1; t += step) ticks.push(t);
    const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const fmt = (t) => {
      const d = new Date(t);
      if (step >= 86400e3) return DAYS[d.getDay()] + ' ' + d.getDate();
      return pad(d.getHours()) + ':' + pad(d.getMinutes()) + (step < 60e3 ? ':' + pad(d.getSeconds()) : '');
    };
    return { ticks, fmt };
  }

  // firstAt returns the index of the first point at or after t.
  function firstAt(pts, t) {
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (pts[m].t < t) lo = m + 1; else hi = m;
    }
    return lo;
  }

  function draw(s) {
    const box = s.canvas.parentElement;
    const w = box.clientWidth;
    const h = box.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.round(w * dpr);
    const ch = Math.round(h * dpr);
    if (s.canvas.width !== cw || s.canvas.height !== ch) {
      s.canvas.width = cw;
      s.canvas.height = ch;
    }
    const g = s.canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';

    const t1 = now();
    const pts = view(s).map((p) => ({
      t: p.t, v: shown(p.v, s.unit), r: long() ? undefined : shown(p.r, s.unit),
      lo: shown(p.lo, s.unit), hi: shown(p.hi, s.unit),
    }));
    const i0 = 0;
    const t0 = long() ? t1 - st.windowMs : Math.min(pts.length ? pts[0].t : t1, t1 - 60e3);
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) {
      for (const v of [p.v, p.r, p.lo, p.hi]) {
        if (typeof v === 'number' && isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    s.canvas.dataset.points = pts.length; // for tests
    s.canvas.dataset.buckets = pts.filter((p) => p.lo !== undefined).length;
    if (lo > hi) {
      g.fillStyle = colors.muted;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('no data yet', w / 2, h / 2);
      return;
    }
    const span = MIN_SPAN[shownUnit(s.unit)] || 1e-9;
    if (hi / 2 - lo / 2 < span / 2) {
      const mid = (hi + lo) / 2;
      lo = mid - span / 2;
      hi = mid + span / 2;
    }
    const yt = valueTicks(lo, hi, Math.max(2, Math.floor(h / 35)));
    const labels = yt.ticks.map((v) => fmtNum(v, yt.dec));
    const padL = Math.ceil(Math.max(...labels.map((l) => g.measureText(l).width))) + 8;
    const padR = 6;
    const padT = 6;
    const padB = 18;
    const pw = w - padL - padR;
    const ph = h - padT - padB;
    if (pw < 20 || ph < 20) return;
    const x = (t) => padL + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => padT + ((yt.max / 2 - v / 2) / (yt.max / 2 - yt.min / 2)) * ph;

    // Grid and value axis.
    g.lineWidth = 1;
    g.strokeStyle = colors.grid;
    g.fillStyle = colors.muted;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    g.beginPath();
    yt.ticks.forEach((v, i) => {
      const yy = Math.round(y(v)) + 0.5;
      g.moveTo(padL, yy);
      g.lineTo(w - padR, yy);
      g.fillText(labels[i], padL - 5, yy);
    });
    // Time axis.
    const tt = timeTicks(t0, t1, Math.max(2, Math.floor(pw / 60)));
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const t of tt.ticks) {
      const xx = Math.round(x(t)) + 0.5;
      g.moveTo(xx, padT);
      g.lineTo(xx, padT + ph);
      const label = tt.fmt(t);
      const lw = g.measureText(label).width / 2;
      g.fillText(label, Math.min(Math.max(xx, padL + lw), w - lw), padT + ph + 4);
    }
    g.stroke();

    g.save();
    g.beginPath();
    g.rect(padL, padT, pw, ph);
    g.clip();
    // The archive's min–max: a faint band.
    g.fillStyle = colors.line;
    g.globalAlpha = 0.18;
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      if (p.lo === undefined) continue;
      const half = (s.archStep || 60e3) / 2;
      const x0 = x(p.t - half);
      g.fillRect(x0, y(p.hi), Math.max(1, x(p.t + half) - x0), Math.max(1, y(p.lo) - y(p.hi)));
    }
    // Raw values: faint points.
    g.fillStyle = colors.raw;
    g.globalAlpha = 0.45;
    for (let i = i0; i < pts.length; i++) {
      const r = pts[i].r;
      if (typeof r === 'number' && isFinite(r)) g.fillRect(x(pts[i].t) - 1.25, y(r) - 1.25, 2.5, 2.5);
    }
    g.globalAlpha = 1;
    // Smoothed values (the archive's means): a line, broken where readings
    // are missing.
    const sen = st.sensors.get(s.sensor);
    let gap = sen && sen.interval_seconds ? 3 * sen.interval_seconds * 1000 : Infinity;
    if (long()) gap = Math.max(gap === Infinity ? 0 : gap, 3 * (s.archStep || 60e3));
    g.strokeStyle = colors.line;
    g.lineWidth = 1.75;
    g.lineJoin = 'round';
    g.beginPath();
    let prev = null;
    for (let i = i0; i < pts.length; i++) {
      const p = pts[i];
      if (typeof p.v !== 'number' || !isFinite(p.v)) {
        prev = null;
        continue;
      }
      if (prev && p.t - prev.t <= gap) g.lineTo(x(p.t), y(p.v));
      else g.moveTo(x(p.t), y(p.v));
      prev = p;
    }
    g.stroke();
    if (prev) {
      g.fillStyle = colors.line;
      g.beginPath();
      g.arc(x(prev.t), y(prev.v), 2.5, 0, 2 * Math.PI);
      g.fill();
    }
    g.restore();
  }

  // ---- rendering loop ----
  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }
  function render() {
    frame = 0;
    for (const s of st.series.values()) {
      if (!s.dirty) continue;
      s.dirty = false;
      renderText(s);
      draw(s);
    }
  }
  const resizer = new ResizeObserver((entries) => {
    for (const e of entries) {
      for (const s of st.series.values()) if (s.canvas.parentElement === e.target) s.dirty = true;
    }
    schedule();
  });

  function renderHeader() {
    const sts = st.status;
    if (sts) {
      $('agent').textContent = sts.agent || 'Kelvin';
      document.title = (sts.agent || 'Kelvin') + ' · Kelvin';
      $('version').textContent = sts.version || '';
      $('uptime').textContent = sts.started ? fmtDuration(now() - Date.parse(sts.started)) : '–';
      $('clock').hidden = sts.clock_synced !== false;
    }
    const link = $('link');
    link.textContent = st.link;
    link.className = 'pill ' + (st.link === 'live' ? 'ok' : st.link === 'offline' ? 'bad' : '');
  }

  function renderOutputs() {
    const ul = $('outputs');
    ul.textContent = '';
    const inputs = ((st.status && st.status.inputs) || []).map(i => Object.assign({}, i, { name: i.name + ' input' }));
    for (const o of ((st.status && st.status.outputs) || []).concat(inputs)) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = o.name;
      const state = document.createElement('span');
      state.className = 'pill ' + (o.connected ? 'ok' : o.state === 'connecting' ? 'warn' : 'bad');
      state.textContent = (o.state || (o.connected ? 'connected' : 'disconnected')) +
        (o.backlog ? ' · backlog ' + o.backlog : '') +
        (o.backlog && o.oldest_unsent ? ', oldest ' + fmtAge(now() - Date.parse(o.oldest_unsent)) : '');
      li.append(name, state);
      if (!o.connected && o.last_error) {
        const err = document.createElement('span');
        err.className = 'err';
        err.textContent = o.last_error;
        err.title = o.last_error;
        li.append(err);
      }
      ul.append(li);
    }
    const b = st.status && st.status.buffer;
    if (b) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = 'buffer';
      const use = document.createElement('span');
      const full = b.max_bytes ? b.bytes / b.max_bytes : 0;
      use.className = 'pill ' + (b.refusing ? 'bad' : full > 0.9 || b.dropped ? 'warn' : 'ok');
      use.textContent = fmtBytes(b.bytes) + ' of ' + fmtBytes(b.max_bytes) +
        (b.dropped ? ' · dropped ' + b.dropped : '') + (b.refusing ? ' · refusing readings: ' + b.refusing : '');
      if (b.disk_full && !b.refusing) use.className = 'pill warn';
      const where = document.createElement('span');
      where.className = 'muted';
      where.textContent = b.disk_full ? 'disk full' : b.on_disk ? b.on_disk + ' readings on disk' :
        b.hot_tail ? 'in memory, nothing pending' : 'nothing pending';
      if (b.hot_full) where.textContent += ' · memory tail full, writing to disk';
      const wear = document.createElement('span');
      wear.className = 'muted';
      // What the storage pays per day: the last 24 hours once the agent has
      // run a day (an outage long ago no longer weighs on it), the totals
      // before (a start's few fsyncs, the seq reservation, would read as
      // hundreds an hour in its first minutes).
      const up = st.status.started ? now() - Date.parse(st.status.started) : 0;
      const day = up >= 864e5;
      const fsyncs = day ? b.fsyncs_last_24h : b.fsyncs;
      wear.textContent = fsyncs + (fsyncs === 1 ? ' fsync · ' : ' fsyncs · ') +
        fmtBytes(day ? b.bytes_written_last_24h : b.bytes_written) + (day ? ' written in the last 24 h' : ' written since start');
      li.append(name, use, where, wear);
      ul.append(li);
    }
    // Conditions that slow the agent down, e.g. a 1-Wire bus read without
    // bulk conversion: one sentence each, with the reason.
    for (const n of (st.status && st.status.notices) || []) {
      const li = document.createElement('li');
      const pill = document.createElement('span');
      pill.className = 'pill warn';
      pill.textContent = 'notice';
      const text = document.createElement('span');
      text.className = 'err';
      text.textContent = n;
      text.title = n;
      li.append(pill, text);
      ul.append(li);
    }
  }

  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }

  // Every second: ages, states, uptime, and the charts' moving time axis.
  setInterval(() => {
    renderHeader();
    if (document.hidden) return;
    refreshArchive(false);
    for (const s of st.series.values()) s.dirty = true;
    schedule();
  }, 1000);

  // ---- data ----
  async function fetchStatus() {
    const sent = Date.now();
    const res = await fetch('api/status', { cache: 'no-store' });
    if (!res.ok) throw new Error('status ' + res.status);
    const sts = await res.json();
    st.offset = Date.parse(sts.now) - (sent + Date.now()) / 2;
    st.status = sts;
    st.sensors = new Map((sts.sensors || []).map((x) => [x.id, x]));
    for (const x of sts.sensors || []) {
      for (const q of x.quantities || []) series(x.id, q, UNITS[q]);
    }
    for (const s of st.series.values()) s.dirty = true;
    renderHeader();
    renderOutputs();
    schedule();
  }
  async function pollStatus() {
    try {
      await fetchStatus();
    } catch (e) {
      // The websocket shows the outage; keep the last status.
    }
    setTimeout(pollStatus, STATUS_EVERY);
  }

  async function fetchHistory() {
    const res = await fetch('api/readings', { cache: 'no-store' });
    if (!res.ok) throw new Error('readings ' + res.status);
    const secs = parseFloat(res.headers.get('X-Kelvin-History-Seconds'));
    const max = parseInt(res.headers.get('X-Kelvin-History-Max'), 10);
    if (secs > 0) st.historyMs = secs * 1000;
    if (max > 0) st.historyMax = max;
    const list = await res.json();
    // The history replaces what we had: it covers the whole window.
    const fresh = new Set();
    for (const r of list) {
      const s = series(r.sensor, r.quantity, r.unit);
      if (!fresh.has(s)) {
        fresh.add(s);
        s.pts = [];
      }
      addReading(r);
    }
  }

  // fetchArchive loads the long history of the shown window.
  async function fetchArchive() {
    const from = Math.floor((now() - st.windowMs) / 1000);
    const res = await fetch('api/history?from=' + from, { cache: 'no-store' });
    if (!res.ok) throw new Error('history ' + res.status);
    const h = await res.json();
    const step = h.step_seconds * 1000;
    const fresh = new Set();
    for (const x of h.series || []) {
      const s = series(x.sensor, x.quantity, x.unit);
      fresh.add(s);
      s.archStep = step;
      s.arch = x.t.map((t, i) => ({
        start: t * 1000, t: t * 1000 + step / 2, end: t * 1000 + step,
        v: x.mean[i], lo: x.min[i], hi: x.max[i], n: x.n[i],
      }));
      s.dirty = true;
    }
    for (const s of st.series.values()) if (!fresh.has(s)) s.arch = [];
    st.archiveAt = Date.now();
    schedule();
  }
  function refreshArchive(force) {
    if (!long() || (!force && Date.now() - st.archiveAt < ARCHIVE_EVERY)) return;
    st.archiveAt = Date.now();
    fetchArchive().catch(() => {
      st.archiveAt = 0; // try again at the next tick
    });
  }

  function renderControls() {
    for (const b of document.querySelectorAll('#windows button')) {
      b.setAttribute('aria-pressed', String(+b.dataset.ms === st.windowMs));
    }
    $('units').textContent = st.fahrenheit ? '°F' : '°C';
  }
  $('windows').addEventListener('click', (ev) => {
    const ms = +(ev.target.dataset && ev.target.dataset.ms);
    if (!ms) return;
    st.windowMs = ms;
    save('window', ms);
    renderControls();
    for (const s of st.series.values()) s.dirty = true;
    schedule();
    refreshArchive(true);
  });
  $('units').addEventListener('click', () => {
    st.fahrenheit = !st.fahrenheit;
    save('unit', st.fahrenheit ? 'F' : 'C');
    renderControls();
    for (const s of st.series.values()) s.dirty = true;
    schedule();
  });
  window.kelvin = { csv: (key) => csv(st.series.get(key)), fmtValue, st }; // for tests and the console

  let attempt = 0;
  function connect() {
    const url = new URL('ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    let queue = []; // readings that arrive while the history loads
    // load fetches the history, then adds what arrived meanwhile.
    async function load() {
      queue = queue || [];
      await fetchHistory();
      const q = queue;
      queue = null;
      q.forEach(addReading);
    }
    ws.onopen = async () => {
      try {
        await load();
      } catch (e) {
        ws.close();
        return;
      }
      attempt = 0;
      setOnline(true);
      refreshArchive(true);
      fetchStatus().catch(() => {});
    };
    ws.onmessage = (ev) => {
      let r;
      try {
        r = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (r && r.skipped) {
        // We fell behind and the server skipped readings: reload them
        // rather than show a gap.
        st.skipped = (st.skipped || 0) + r.skipped;
        if (!queue) load().catch(() => ws.close());
        return;
      }
      if (queue) {
        if (queue.length < 100000) queue.push(r);
      } else addReading(r);
    };
    ws.onclose = () => {
      setOnline(false);
      const delay = Math.min(10000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      attempt++;
      setTimeout(connect, delay);
    };
  }

  function setOnline(on) {
    st.link = on ? 'live' : 'offline';
    $('offline').hidden = on;
    renderHeader();
  }

  if (![300e3, 3600e3, 86400e3, 604800e3].includes(st.windowMs)) st.windowMs = 3600e3;
  renderControls();
  readColors();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', readColors);
  renderHeader();
  pollStatus();
  connect();
})();
