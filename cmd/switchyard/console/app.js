// Switchyard console: polls the admin API every second and draws what it
// answers. Plain JavaScript, no dependencies, no build step. Everything
// shown is built with DOM calls and textContent, never innerHTML: digest
// texts and error messages come from clients and servers.
'use strict';

(function () {
  const POLL_MS = 1000;
  const HISTORY_MS = 5 * 60 * 1000; // lag chart window
  const TOKEN_KEY = 'switchyard.admin.token';
  const DIGESTS = '/api/queries?sort=total&limit=50';

  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let timer = 0;
  let config = null; // the running config, fetched once: probe interval, lag limit
  let prev = null; // the previous poll's counters, for rates
  const lagHistory = new Map(); // replica name -> [{t, lag, state}]

  class Unauthorized extends Error {}

  // api fetches path from the admin listener, with the token when there is
  // one. A 401 throws Unauthorized; any other failure an Error with .status.
  async function api(path, text) {
    const headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    const resp = await fetch(path, { headers, cache: 'no-store' });
    if (resp.status === 401) throw new Unauthorized(path);
    if (!resp.ok) {
      const err = new Error(path + ': HTTP ' + resp.status);
      err.status = resp.status;
      throw err;
    }
    return text ? resp.text() : resp.json();
  }

  // el builds an element: attrs are attributes (class, data-*...), children
  // strings (as text) or nodes.
  function el(tag, attrs, ...children) {
    const ns = tag.startsWith('svg:') ? 'http://www.w3.org/2000/svg' : null;
    const e = ns ? document.createElementNS(ns, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const fmtInt = (n) => intFmt.format(n);
  function fmtRate(r) {
    if (r === null || r === undefined || !isFinite(r)) return '';
    return (r >= 10 ? r.toFixed(0) : r.toFixed(1)) + '/s';
  }
  function fmtPct(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(1) + '%' : '–';
  }
  function fmtUs(us) {
    if (us === null || us === undefined) return '';
    if (us < 1000) return us.toFixed(0) + ' µs';
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + ' ms';
    return (us / 1e6).toFixed(2) + ' s';
  }
  function fmtLag(s) {
    if (s === null || s === undefined) return 'unknown';
    return s < 10 ? s.toFixed(2) + ' s' : s.toFixed(0) + ' s';
  }
  function fmtUptime(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    return m + 'm ' + Math.floor(s % 60) + 's';
  }
  // goDuration parses a Go duration ("250ms", "1m30s") into seconds.
  function goDuration(s) {
    if (typeof s !== 'string') return null;
    const units = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 };
    let total = 0, matched = false;
    for (const [, n, u] of s.matchAll(/([\d.]+)(h|ms|m|s|us|µs|ns)/g)) {
      total += parseFloat(n) * units[u];
      matched = true;
    }
    return matched ? total : null;
  }

  // parseMetrics reads the Prometheus text format into samples
  // {name, labels, value}. Comments, histograms' _bucket lines and all are
  // kept; callers pick the names they want.
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      let i = 0;
      while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
      const name = line.slice(0, i);
      const labels = {};
      if (line[i] === '{') {
        i++;
        while (i < line.length && line[i] !== '}') {
          const eq = line.indexOf('=', i);
          const key = line.slice(i, eq).trim();
          let j = eq + 2, val = '';
          for (; j < line.length && line[j] !== '"'; j++) {
            if (line[j] === '\\') {
              j++;
              val += line[j] === 'n' ? '\n' : line[j];
            } else {
              val += line[j];
            }
          }
          labels[key] = val;
          i = j + 1;
          if (line[i] === ',') i++;
        }
        i++;
      }
      const value = parseFloat(line.slice(i).trim().split(' ')[0]);
      out.push({ name, labels, value });
    }
    return out;
  }

  // sumBy adds up the samples of name, grouped by label (or all in '').
  function sumBy(samples, name, label) {
    const out = new Map();
    for (const s of samples) {
      if (s.name !== name) continue;
      const k = label ? (s.labels[label] || '') : '';
      out.set(k, (out.get(k) || 0) + s.value);
    }
    return out;
  }
  const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);

  // traffic sums up what the console shows from /metrics.
  function traffic(samples) {
    const st = 'switchyard_statements_total';
    const perBackendRoute = new Map();
    for (const s of samples) {
      if (s.name !== st) continue;
      const b = perBackendRoute.get(s.labels.backend) || { primary: 0, replica: 0 };
      b[s.labels.route] = (b[s.labels.route] || 0) + s.value;
      perBackendRoute.set(s.labels.backend, b);
    }
    const one = (name) => total(sumBy(samples, name));
    return {
      byRoute: sumBy(samples, st, 'route'),
      byClass: sumBy(samples, st, 'class'),
      byBackend: sumBy(samples, st, 'backend'),
      perBackendRoute,
      statements: total(sumBy(samples, st)),
      errorsByCode: sumBy(samples, 'switchyard_errors_total', 'code'),
      reasons: sumBy(samples, 'switchyard_routing_decisions_total', 'reason'),
      pins: sumBy(samples, 'switchyard_session_pins_total', 'reason'),
      poolWaits: sumBy(samples, 'switchyard_backend_pool_waits_total', 'backend'),
      rejected: sumBy(samples, 'switchyard_client_connections_rejected_total', 'reason'),
      clients: one('switchyard_client_connections'),
      accepted: one('switchyard_client_connections_total'),
      retries: one('switchyard_read_retries_total'),
      refusals: one('switchyard_replica_refusals_total'),
      panics: one('switchyard_session_panics_total'),
    };
  }

  // --- authentication -------------------------------------------------

  // askToken hides every number and shows the token form: an API call
  // answered 401 (no token yet, a wrong one, or a reload changed it).
  function askToken() {
    clearTimeout(timer);
    $('data').hidden = true;
    for (const id of ['summary', 'topology', 'lag-chart', 'lag-legend', 'split', 'per-backend', 'reasons',
      'errors', 'connections', 'digests']) {
      $(id).replaceChildren();
    }
    $('digests-status').textContent = '';
    lagHistory.clear();
    prev = null;
    config = null;
    $('login-error').textContent = token ? 'The admin API refused this token.' : '';
    $('login').hidden = false;
    $('forget').hidden = true;
    setConn('auth', 'token required');
    $('token').focus();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    $('login-error').textContent = '';
    poll();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = '';
    askToken();
  });

  function setConn(state, text) {
    const c = $('conn');
    c.dataset.conn = state;
    c.textContent = text;
  }

  // --- polling --------------------------------------------------------

  async function poll() {
    clearTimeout(timer);
    try {
      const [status, backends, metricsText] = await Promise.all([
        api('/api/status'), api('/api/backends'), api('/metrics', true),
      ]);
      let digests = null, digestErr = null;
      try {
        digests = await api(DIGESTS);
      } catch (e) {
        if (e instanceof Unauthorized) throw e;
        digestErr = e;
      }
      if (!config) {
        config = await api('/api/config').then((c) => c.config || {}, (e) => {
          if (e instanceof Unauthorized) throw e;
          return {};
        });
      }
      const now = Date.now();
      const t = traffic(parseMetrics(metricsText));
      const rates = prev ? rateOf(prev, { t: now, traffic: t }) : null;
      prev = { t: now, traffic: t };
      recordLag(now, backends.backends || []);

      $('login').hidden = true;
      $('data').hidden = false;
      $('forget').hidden = !token;
      renderSummary(status, t, rates);
      renderTopology(backends.backends || [], t);
      renderLag(now, backends.backends || []);
      renderSplit(t, backends.backends || [], rates);
      renderReasons(t);
      renderDigests(digests, digestErr);
      $('version').textContent = status.version;
      setConn('live', 'live · ' + new Date(now).toLocaleTimeString());
    } catch (e) {
      if (e instanceof Unauthorized) {
        askToken();
        return; // the form restarts polling
      }
      setConn('error', 'admin API unreachable: ' + e.message);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function rateOf(a, b) {
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) return null;
    const r = (x, y) => Math.max(0, (y - x) / dt);
    const perBackend = new Map();
    for (const [k, v] of b.traffic.byBackend) perBackend.set(k, r(a.traffic.byBackend.get(k) || 0, v));
    return {
      statements: r(a.traffic.statements, b.traffic.statements),
      errors: r(total(a.traffic.errorsByCode), total(b.traffic.errorsByCode)),
      perBackend,
    };
  }

  // --- rendering ------------------------------------------------------

  function stat(label, value, sub, attrs) {
    return el('div', Object.assign({ class: 'stat' }, attrs || {}),
      el('div', { class: 'label' }, label),
      el('div', { class: 'value' }, value),
      el('div', { class: 'sub' }, sub || ''));
  }

  function renderSummary(status, t, rates) {
    const errs = total(t.errorsByCode);
    const replica = t.byRoute.get('replica') || 0;
    $('summary').replaceChildren(
      stat('Clients', fmtInt(status.clients), fmtInt(t.accepted) + ' accepted',
        { 'data-field': 'clients', 'data-value': status.clients }),
      stat('Statements', fmtInt(t.statements), rates ? fmtRate(rates.statements) : '',
        { 'data-field': 'statements', 'data-value': t.statements }),
      stat('Reads on replicas', fmtPct(replica, t.statements), fmtInt(replica) + ' statements',
        { 'data-field': 'replica-share', 'data-value': replica }),
      stat('Errors', fmtInt(errs), rates ? fmtRate(rates.errors) : '',
        { 'data-field': 'errors', 'data-value': errs, class: errs > 0 ? 'stat bad' : 'stat' }),
      stat('Rejected', fmtInt(total(t.rejected)), 'client connections',
        { 'data-field': 'rejected', 'data-value': total(t.rejected) }),
      stat('Uptime', fmtUptime(status.uptime_seconds), status.draining ? 'draining' : 'since ' +
        new Date(status.started_at).toLocaleString()),
    );
  }

  // ordered puts the primary first, then the others in the API's order.
  const ordered = (bs) => bs.filter((b) => b.role === 'primary').concat(bs.filter((b) => b.role !== 'primary'));

  function renderTopology(backends, t) {
    const interval = config && config.monitor ? config.monitor.interval : '';
    $('probe').textContent = interval ? 'probed every ' + interval : '';
    $('topology').replaceChildren(...ordered(backends).map((b) => {
      const why = b.health && b.health.error;
      const rows = [
        ['Address', 'address', b.address],
        ['Lag', 'lag', b.role === 'primary' ? '–' : fmtLag(b.lag_seconds), b.lag_seconds],
        ['Weight', 'weight', String(b.weight), b.weight],
        ['Pool in use', 'in_use', fmtInt(b.in_use), b.in_use],
        ['Pool idle', 'idle', fmtInt(b.idle), b.idle],
        ['Statements', 'statements', fmtInt(t.byBackend.get(b.name) || 0), t.byBackend.get(b.name) || 0],
      ];
      if (b.health && b.health.since) rows.push(['Since', 'since', new Date(b.health.since).toLocaleTimeString()]);
      if (b.writable_by && b.writable_by.length) rows.push(['Writable by', 'writable_by', b.writable_by.join(', ')]);
      return el('article', { class: 'backend', 'data-backend': b.name, 'data-state': b.state, 'data-role': b.role },
        el('div', { class: 'head' },
          el('span', { class: 'name' }, b.name),
          el('span', { class: 'role', 'data-role': b.role }, b.role),
          el('span', { class: 'state', 'data-state': b.state, 'data-field': 'state' }, b.state)),
        el('dl', {}, rows.map(([label, field, text, value]) => [
          el('dt', {}, label),
          el('dd', { 'data-field': field, 'data-value': value }, text),
        ])),
        why && b.state !== 'usable' ? el('div', { class: 'why', 'data-field': 'error' }, why) : null);
    }));
  }

  function recordLag(now, backends) {
    const seen = new Set();
    for (const b of backends) {
      if (b.role === 'primary') continue;
      seen.add(b.name);
      const h = lagHistory.get(b.name) || [];
      h.push({ t: now, lag: b.lag_seconds, state: b.state });
      while (h.length && h[0].t < now - HISTORY_MS) h.shift();
      lagHistory.set(b.name, h);
    }
    for (const name of lagHistory.keys()) if (!seen.has(name)) lagHistory.delete(name); // removed by a reload
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // renderLag draws the lag history as an SVG line chart sized to its box:
  // one line per replica, gaps where the lag was unknown, red marks along
  // the bottom while a replica was down, the configured limit dashed.
  function renderLag(now, backends) {
    const svg = $('lag-chart');
    const W = Math.max(200, Math.round(svg.clientWidth || 600)), H = Math.round(svg.clientHeight || 200);
    const pad = { l: 44, r: 10, t: 10, b: 22 };
    const limit = config && config.monitor ? goDuration(config.monitor.max_replication_lag) : null;
    let max = limit ? limit * 1.25 : 1;
    for (const h of lagHistory.values()) for (const p of h) if (p.lag !== null && p.lag !== undefined) max = Math.max(max, p.lag);
    max = niceMax(max);
    const x = (t) => pad.l + (W - pad.l - pad.r) * (1 - (now - t) / HISTORY_MS);
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const parts = [];
    for (let i = 0; i <= 4; i++) {
      const v = max * i / 4;
      parts.push(el('svg:line', { class: 'grid', x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }));
      parts.push(el('svg:text', { class: 'axis', x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' },
        (max < 1 ? v.toFixed(2) : v.toFixed(max < 5 ? 1 : 0)) + 's'));
    }
    for (let m = 0; m <= 5; m++) {
      const tx = x(now - m * 60000);
      parts.push(el('svg:text', { class: 'axis', x: tx, y: H - 6, 'text-anchor': m === 0 ? 'end' : 'middle' },
        m === 0 ? 'now' : '−' + m + 'm'));
    }
    if (limit) {
      parts.push(el('svg:line', { class: 'limit', x1: pad.l, x2: W - pad.r, y1: y(limit), y2: y(limit) }));
    }
    const legend = [];
    let i = 0;
    for (const b of backends) {
      if (b.role === 'primary') continue;
      const h = lagHistory.get(b.name) || [];
      const color = 'c' + (i++ % 6);
      // Split the history into runs of known lag: an unknown lag is a gap.
      let run = [];
      const runs = [run];
      for (const p of h) {
        if (p.lag === null || p.lag === undefined) {
          if (run.length) runs.push(run = []);
          continue;
        }
        run.push(`${x(p.t).toFixed(1)},${y(p.lag).toFixed(1)}`);
      }
      for (const r of runs) {
        if (r.length === 1) r.push(r[0]); // a lone sample still shows as a dot
        if (r.length) {
          parts.push(el('svg:polyline', { class: 'series ' + color, points: r.join(' '), 'data-backend': b.name, 'stroke-linecap': 'round' }));
        }
      }
      for (const p of h) {
        if (p.state === 'down') {
          parts.push(el('svg:rect', { class: 'downmark', x: x(p.t) - 2, y: H - pad.b - 3, width: 4, height: 3, 'data-backend': b.name }));
        }
      }
      const last = h.length ? h[h.length - 1].lag : null;
      legend.push(el('span', { 'data-backend': b.name, 'data-samples': h.length },
        el('span', { class: 'swatch ' + color }), b.name + ' ', el('span', { class: 'muted' }, fmtLag(last))));
    }
    if (limit) legend.push(el('span', { class: 'muted' }, '- - - max_replication_lag ' + config.monitor.max_replication_lag));
    if (!legend.length) legend.push(el('span', { class: 'muted' }, 'no replicas'));
    svg.replaceChildren(...parts);
    $('lag-legend').replaceChildren(...legend);
  }

  // bar draws a stacked bar of parts [[class, label, value]].
  function bar(field, parts) {
    const sum = parts.reduce((a, p) => a + p[2], 0);
    const b = el('div', { class: 'bar', 'data-field': field });
    for (const [cls, , v] of parts) {
      const s = el('span', { class: cls });
      s.style.width = (sum > 0 ? 100 * v / sum : 0) + '%'; // CSSOM, which the CSP allows
      b.append(s);
    }
    const labels = el('div', { class: 'barlabel' }, parts.map(([cls, label, v]) =>
      el('span', { 'data-part': cls, 'data-value': v }, el('span', { class: 'swatch ' + cls }),
        `${label} ${fmtInt(v)} (${fmtPct(v, sum)})`)));
    return [b, labels];
  }

  function table(id, head, rows) {
    $(id).replaceChildren(
      el('thead', {}, el('tr', {}, head.map((h, i) => el('th', { class: i ? 'n' : '' }, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: head.length, class: 'muted' }, 'none yet'))));
  }

  function renderSplit(t, backends, rates) {
    const cls = t.byClass;
    const reads = cls.get('read') || 0, writes = cls.get('write') || 0;
    $('split').replaceChildren(
      el('h3', {}, 'By route'),
      ...bar('route', [['primary', 'primary', t.byRoute.get('primary') || 0], ['replica', 'replica', t.byRoute.get('replica') || 0]]),
      el('h3', {}, 'By statement class'),
      ...bar('class', [['read', 'read', reads], ['write', 'write', writes], ['other', 'other', t.statements - reads - writes]]),
    );
    table('per-backend', ['Backend', 'Statements', 'Share', 'Rate', 'In use', 'Idle', 'Pool waits'],
      ordered(backends).map((b) => {
        const n = t.byBackend.get(b.name) || 0;
        return el('tr', { 'data-backend': b.name },
          el('td', {}, b.name),
          el('td', { class: 'n', 'data-field': 'statements', 'data-value': n }, fmtInt(n)),
          el('td', { class: 'n' }, fmtPct(n, t.statements)),
          el('td', { class: 'n' }, rates ? fmtRate(rates.perBackend.get(b.name) || 0) : ''),
          el('td', { class: 'n', 'data-field': 'in_use', 'data-value': b.in_use }, fmtInt(b.in_use)),
          el('td', { class: 'n', 'data-field': 'idle', 'data-value': b.idle }, fmtInt(b.idle)),
          el('td', { class: 'n' }, fmtInt(t.poolWaits.get(b.name) || 0)));
      }));
  }

  const desc = (m) => [...m.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);

  function renderReasons(t) {
    table('reasons', ['Reason', 'Decisions'], desc(t.reasons).map(([k, v]) =>
      el('tr', { 'data-reason': k }, el('td', {}, k), el('td', { class: 'n', 'data-value': v }, fmtInt(v)))));
    table('errors', ['MySQL error', 'Sent'], desc(t.errorsByCode).map(([k, v]) =>
      el('tr', { 'data-code': k }, el('td', {}, k), el('td', { class: 'n', 'data-value': v }, fmtInt(v)))));
    const rows = [
      ['Clients connected now', t.clients], ['Client connections accepted', t.accepted],
      ...desc(t.rejected).map(([k, v]) => ['Rejected: ' + k, v]),
      ...desc(t.pins).map(([k, v]) => ['Sessions pinned: ' + k, v]),
      ['Reads retried elsewhere', t.retries], ['Writes refused by a replica', t.refusals], ['Session panics', t.panics],
    ];
    table('connections', ['', 'Count'], rows.map(([k, v]) =>
      el('tr', {}, el('td', {}, k), el('td', { class: 'n', 'data-value': v }, fmtInt(v)))));
  }

  function chips(obj, attr) {
    return el('div', { class: 'chips' }, desc(new Map(Object.entries(obj || {}))).map(([k, v]) =>
      el('span', { class: 'chip', [attr]: k, 'data-value': v }, `${k} ${fmtInt(v)}`)));
  }

  function renderDigests(d, err) {
    const status = $('digests-status');
    if (!d) {
      status.textContent = 'digests unavailable' + (err ? ' (' + err.message + ')' : '');
      status.dataset.state = 'unavailable';
      $('digests').replaceChildren();
      return;
    }
    const list = d.digests || [];
    status.dataset.state = 'ok';
    status.textContent = `${fmtInt(list.length)} shown of ${fmtInt(d.tracked || 0)} tracked (limit ${fmtInt(d.limit || 0)}, ` +
      `${fmtInt(d.evicted || 0)} evicted)`;
    const head = ['Query', 'Count', 'Errors', 'Total', 'Avg', 'p95', 'Max', 'Rows', 'Routes', 'Reasons', 'Backends'];
    $('digests').replaceChildren(
      el('thead', {}, el('tr', {}, head.map((h, i) => el('th', { class: i > 0 && i < 8 ? 'n' : '' }, h)))),
      el('tbody', {}, list.map((q) => {
        const num = (label, field, v, text) => el('td', { class: 'n', 'data-label': label, 'data-field': field, 'data-value': v }, text);
        return el('tr', { 'data-digest': q.id },
          el('td', { class: 'q', 'data-label': 'Query' }, el('code', { 'data-field': 'text' }, q.text),
            el('div', { class: 'who' }, `${q.user || ''}${q.schema ? ' @ ' + q.schema : ''} · ${q.id}`)),
          num('Count', 'count', q.count, fmtInt(q.count)),
          num('Errors', 'errors', q.errors, fmtInt(q.errors)),
          num('Total', 'total_us', q.total_us, fmtUs(q.total_us)),
          num('Avg', 'avg_us', q.count ? q.total_us / q.count : 0, fmtUs(q.count ? q.total_us / q.count : 0)),
          num('p95', 'p95_us', q.p95_us, fmtUs(q.p95_us)),
          num('Max', 'max_us', q.max_us, fmtUs(q.max_us)),
          num('Rows', 'rows', (q.rows_sent || 0) + (q.rows_affected || 0),
            `${fmtInt(q.rows_sent || 0)} sent / ${fmtInt(q.rows_affected || 0)} changed`),
          el('td', { 'data-label': 'Routes', 'data-field': 'routes' }, chips(q.routes, 'data-route')),
          el('td', { 'data-label': 'Reasons', 'data-field': 'reasons' }, chips(q.reasons, 'data-reason')),
          el('td', { 'data-label': 'Backends', 'data-field': 'backends' }, chips(q.backends, 'data-backend')));
      })));
  }

  // Redraw the chart when the window is resized, between polls.
  window.addEventListener('resize', () => {
    if (!$('data').hidden && prev) renderLag(Date.now(), [...lagHistory.keys()].map((name) => ({ name, role: 'replica' })));
  });

  poll();
})();
