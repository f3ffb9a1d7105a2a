/* The regulator's console: sign-in with the regulator's key (the producer console's
   mechanism, keys.js), the consortium's nodes live, the cross-node comparison, and the
   recall workflow (preview from the forward trace, confirm as a `recall` transaction
   signed here, status). Audit data comes from /v1/audit over RFC 9421 requests signed
   with the same key. */
(function () {
  'use strict';
  const K = window.ptKeys;
  const M = JSON.parse(document.getElementById('messages').textContent);
  const LANG = document.documentElement.lang.startsWith('zh') ? 'zh' : 'en';
  const SLOT = 'regulator';
  const POLL_MS = 1500;
  const DOWN_AFTER_S = 2.5;
  const t = (key, values) => {
    let text = M[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.split('{' + k + '}').join(v);
    return text;
  };
  const app = document.getElementById('app');
  const state = { me: null, key: null, tab: 'health', nodes: null, polled: null, compare: null, plan: null, trace: null, recall: null, recalls: null };
  let timer = null;

  function h (tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }
  const $ = (sel) => document.querySelector(sel);

  // -- network -----------------------------------------------------------------------------
  class Refusal extends Error {
    constructor (status, body) { super(body.message || String(status)); this.status = status; this.body = body; }
  }
  async function api (method, path, body, headers) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(headers || {}) },
        body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
        credentials: 'same-origin'
      });
    } catch (e) {
      throw new Refusal(0, { message: t('reg.offline') });
    }
    if (response.status === 204) return null;
    const data = (response.headers.get('content-type') || '').includes('json') ? await response.json() : {};
    if (!response.ok) throw new Refusal(response.status, data);
    return data;
  }
  /* An audit request, signed (RFC 9421) with the regulator's key. */
  async function audit (path) {
    const headers = await K.signRequest(state.key, state.me.fingerprint, 'GET', path, new Uint8Array());
    return api('GET', path, undefined, headers);
  }
  const q = (params) => '?' + new URLSearchParams(params).toString();

  // -- sign-in -----------------------------------------------------------------------------
  function filePicker (id) {
    const name = h('span', { class: 'name' }, t('reg.no_file'));
    const control = h('input', { type: 'file', id, name: id, accept: '.key,.pem' });
    control.addEventListener('change', () => { name.textContent = control.files[0] ? control.files[0].name : t('reg.no_file'); });
    return h('label', { class: 'file', for: id }, h('span', { class: 'button' }, t('reg.choose_file')), name, control);
  }

  function signInView () {
    const form = h('form', { class: 'card signin', id: 'signin' },
      h('h1', {}, t('reg.signin.title')),
      h('p', { class: 'hint' }, t('reg.signin.hint')),
      h('div', { class: 'field' }, h('p', { class: 'label' }, t('reg.signin.keyfile')), filePicker('keyfile')),
      h('div', { class: 'field' }, h('label', { for: 'passphrase' }, t('reg.signin.passphrase')), h('input', { type: 'password', id: 'passphrase', autocomplete: 'current-password' })),
      h('p', { class: 'error', id: 'signin-error', role: 'alert' }),
      h('button', { type: 'submit', id: 'signin-button' }, t('reg.signin.button')),
      h('p', { class: 'hint small' }, t('reg.signin.private')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const error = $('#signin-error');
      error.textContent = '';
      const file = $('#keyfile').files[0];
      if (!file) { error.textContent = t('reg.signin.nofile'); return; }
      try {
        const key = await K.importKeyFile(await file.text(), $('#passphrase').value);
        $('#passphrase').value = '';
        const challenge = await api('POST', '/regulator/api/challenge');
        const signature = await K.answerChallenge(key, challenge);
        state.me = await api('POST', '/regulator/api/session', { challenge: challenge.challenge, signature });
        state.key = key;
        await K.saveKey(key, SLOT);
        render();
      } catch (err) {
        if (err instanceof K.KeyFileError) {
          error.textContent = t(err.code === 'passphrase' ? 'reg.signin.passphrase_error' : 'reg.signin.format', { detail: err.message });
        } else if (err instanceof Refusal && err.status === 403) {
          error.textContent = t('reg.refused_role', { detail: err.message });
        } else {
          error.textContent = err.message;
        }
      }
    });
    return form;
  }

  async function signOut () {
    stopPolling();
    await K.forgetKey(SLOT);
    try { await api('DELETE', '/regulator/api/session'); } catch (e) { /* the key is gone anyway */ }
    state.me = null; state.key = null;
    render();
  }

  // -- chain health ------------------------------------------------------------------------
  function stopPolling () { if (timer) clearTimeout(timer); timer = null; }
  async function poll () {
    timer = null;
    try {
      state.nodes = await api('GET', '/regulator/api/nodes');
      state.polled = new Date();
    } catch (e) {
      state.nodes = state.nodes ? { ...state.nodes, nodes: state.nodes.nodes.map((n) => ({ ...n, up: n.id === state.nodes.self ? false : n.up })) } : null;
    }
    if (state.tab === 'health' && state.me) {
      const old = $('#nodes');
      if (old) old.replaceWith(nodesTable());
      timer = setTimeout(poll, POLL_MS);
    }
  }

  const time = (iso) => iso ? new Date(iso).toLocaleString(LANG === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: 'Asia/Shanghai', hour12: false }) : '—';

  function nodesTable () {
    const data = state.nodes;
    if (!data) return h('div', { id: 'nodes' }, '…');
    const top = Math.max(0, ...data.nodes.filter((n) => n.up).map((n) => n.height || 0));
    const rows = data.nodes.map((n) => h('tr', { class: n.up ? 'up' : 'down', 'data-node': n.id },
      h('td', {}, h('strong', {}, n.id), n.id === data.self ? h('span', { class: 'tag' }, t('reg.health.this')) : null, h('br'), h('small', { class: 'muted' }, n.url)),
      h('td', {}, h('span', { class: 'state ' + (n.up ? 'state-up' : 'state-down') }, t(n.up ? 'reg.health.up' : 'reg.health.down')),
        n.up && top - n.height > 2 ? h('small', { class: 'behind' }, ' ' + t('reg.health.behind', { n: top - n.height })) : null),
      h('td', { class: 'num' }, n.up ? n.height : '—'),
      h('td', {}, n.up ? time(n.last_block_time) : '—'),
      h('td', { class: 'peers' }, n.up ? [h('strong', {}, (n.peers || []).length), h('small', { class: 'muted' }, ' ' + (n.peers || []).join(', '))] : '—'),
      h('td', { class: 'num' }, n.up ? n.round : '—'),
      h('td', { class: 'num' }, n.up ? n.mempool : '—'),
      h('td', {}, n.up ? t(n.signing ? 'reg.yes' : 'reg.no') : '—')));
    return h('div', { id: 'nodes' },
      data.configured ? null : h('p', { class: 'hint' }, t('reg.health.notconfigured')),
      h('table', { class: 'grid nodes' },
        h('thead', {}, h('tr', {}, ['node', 'state', 'height', 'last', 'peers', 'round', 'mempool', 'signing'].map((c) => h('th', {}, t('reg.health.' + c))))),
        h('tbody', {}, rows)),
      h('p', { class: 'hint small', id: 'polled' }, state.polled ? t('reg.health.updated', { time: state.polled.toLocaleTimeString(LANG === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false }) }) : ''));
  }

  function compareCard () {
    const out = h('div', { id: 'compare-result' }, compareResult());
    const button = h('button', { type: 'button', id: 'compare-button', class: 'secondary', onclick: async () => {
      button.disabled = true;
      out.replaceChildren(h('p', { class: 'hint' }, t('reg.compare.running')));
      try { state.compare = await audit('/v1/audit/compare'); } catch (e) { state.compare = { error: e.message }; }
      button.disabled = false;
      out.replaceChildren(compareResult());
    } }, t('reg.compare.button'));
    return h('section', { class: 'card' }, h('h2', {}, t('reg.compare.title')), h('p', { class: 'hint' }, t('reg.compare.hint')), button, out);
  }
  function compareResult () {
    const c = state.compare;
    if (!c) return '';
    if (c.error) return h('p', { class: 'error' }, c.error);
    if (c.ok) return h('p', { class: 'ok', id: 'compare-verdict' }, t('reg.compare.ok', { h: c.compared_up_to }));
    return h('div', {},
      h('p', { class: 'error', id: 'compare-verdict' }, t('reg.compare.diverged', { nodes: c.diverging_nodes.join(', '), heights: (c.divergences || []).map((d) => d.height).join(', ') })),
      h('table', { class: 'grid', id: 'divergences' }, h('tbody', {}, (c.divergences || []).map((d) => h('tr', {},
        h('td', { class: 'num' }, d.height),
        h('td', {}, (d.groups || []).map((g) => h('div', {}, h('strong', {}, g.nodes.join(', ')), ': ', h('code', {}, String(g.digest).slice(0, 16) + '…')))))))));
  }

  function healthView () {
    if (!timer) timer = setTimeout(poll, 0);
    return [
      h('section', { class: 'card' }, h('h2', {}, t('reg.health.title')), h('p', { class: 'hint' }, t('reg.health.hint', { s: DOWN_AFTER_S })), nodesTable()),
      compareCard()
    ];
  }

  // -- recall ------------------------------------------------------------------------------
  function lotFromForm () {
    const uri = $('#r-uri').value.trim();
    if (uri) return uri;
    let gtin = $('#r-gtin').value.replace(/\D/g, '');
    if (gtin.length === 13) gtin = '0' + gtin;
    const lot = $('#r-lot').value.trim();
    return gtin && lot ? `https://id.gs1.org/01/${gtin}/10/${encodeURIComponent(lot)}` : '';
  }
  const consumerPage = (lot) => lot.replace(/^https:\/\/id\.gs1\.org/, '');

  async function preview () {
    const lot = lotFromForm();
    const out = $('#preview');
    if (!lot) return;
    out.replaceChildren(h('p', { class: 'hint' }, t('reg.recall.previewing')));
    try {
      state.plan = await audit('/v1/audit/recalls/plan' + q({ lot }));
      try { state.trace = await audit('/v1/audit/trace/forward' + q({ identifier: lot })); } catch (e) { state.trace = null; }
      state.recall = null;
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error' }, e.message));
      return;
    }
    out.replaceChildren(previewView());
  }

  function list (items, render) {
    return items.length ? h('ul', { class: 'affected' }, items.map((i) => h('li', {}, render(i)))) : h('p', { class: 'hint' }, t('reg.recall.none'));
  }

  /* How the events spelled a canonical key (an SSCC as a URN, say), if not as the key. */
  function spellings (key) {
    const given = ((state.trace && state.trace.spellings) || {})[key] || [];
    return given.filter((g) => g !== key).map((g) => h('small', { class: 'muted spelling' }, ' ' + g));
  }

  /* Each place once, with the first event that put the lot there. */
  function places (trace) {
    const seen = new Set();
    return (trace ? trace.locations : []).filter((l) => !seen.has(l.location + l.kind) && seen.add(l.location + l.kind));
  }

  function previewView () {
    const plan = state.plan;
    const trace = state.trace;
    if (!plan.traced) return h('p', { class: 'error', id: 'preview-empty' }, t('reg.recall.notrace'));
    const units = plan.payloads.flatMap((p) => p.units);
    const reason = h('textarea', { id: 'r-reason', rows: 3, maxlength: 1000 });
    const error = h('p', { class: 'error', id: 'recall-error', role: 'alert' });
    const confirm = h('button', { type: 'button', id: 'recall-confirm', class: 'danger', onclick: () => commit(reason, error, confirm) }, t('reg.recall.confirm'));
    return h('div', { id: 'plan' },
      h('h3', { id: 'affected-count' }, t('reg.recall.affected', { n: plan.units })),
      h('div', { class: 'cols' },
        h('div', {}, h('h4', {}, t('reg.recall.units')), list(units, (u) => [h('code', { class: 'unit' }, u), ...spellings(u)])),
        h('div', {},
          h('h4', {}, t('reg.recall.locations')),
          list(places(trace), (l) => [h('strong', {}, l.place || l.location), ` · ${t('reg.kind.' + l.kind)} · ${l.organization || ''} · ${time(l.eventTime)}`]),
          h('h4', {}, t('reg.recall.shipments')),
          list(trace ? trace.shipments : [], (s) => [h('code', {}, s.identifier), ` → ${(s.destinations || []).join(', ') || '—'} · ${time(s.eventTime)}`]))),
      plan.notes.length ? h('div', {}, h('h4', {}, t('reg.recall.notes')), list(plan.notes, (n) => n)) : null,
      h('div', { class: 'field' }, h('label', { for: 'r-reason' }, t('reg.recall.reason')), reason),
      error, confirm);
  }

  async function submit (envelope) {
    const accepted = await api('POST', '/v1/transactions', envelope);
    for (let i = 0; i < 12; i++) {
      const status = await api('GET', `/v1/transactions/${accepted.id}?wait=10`);
      if (status.state === 'rejected') throw new Refusal(422, { message: status.reason });
      if (status.state !== 'pending') return status;
    }
    return { id: accepted.id, state: 'pending' };
  }

  async function commit (reason, error, button) {
    error.textContent = '';
    const text = reason.value.trim();
    if (!text) { error.textContent = t('reg.recall.noreason'); return; }
    button.disabled = true;
    button.textContent = t('reg.recall.confirming');
    try {
      let last = null;
      for (const payload of state.plan.payloads) {
        const body = { lot: payload.lot, reason: text };
        if (payload.units.length) body.units = payload.units;
        const { envelope } = await K.signTx(state.key, { chainId: state.me.chainId, type: 'recall', payload: body, signer: state.me.fingerprint });
        last = await submit(envelope);
      }
      const status = await audit('/v1/audit/recalls/status' + q({ identifier: state.plan.lot }));
      state.recall = { tx: last, status };
      state.recalls = null;
      $('#preview').replaceChildren(statusView());
      loadRecalls();
    } catch (e) {
      error.textContent = e.message || t('reg.refused');
      button.disabled = false;
      button.textContent = t('reg.recall.confirm');
    }
  }

  function statusView () {
    const { tx, status } = state.recall;
    return h('div', { id: 'recall-status', class: 'result' },
      h('p', { class: 'ok', id: 'recall-committed' }, t('reg.recall.committed', { height: tx.height, id: tx.id.slice(0, 16) + '…' })),
      h('h3', {}, t('reg.recall.status')),
      h('p', {}, h('span', { class: 'state ' + (status.recalled ? 'state-recalled' : '') , id: 'recall-state' }, t(status.recalled ? 'reg.recall.recalled' : 'reg.recall.notrecalled')),
        ' ', status.message ? status.message[LANG] : ''),
      h('p', {}, h('a', { href: consumerPage(state.plan.lot), id: 'consumer-link', target: '_blank', rel: 'noopener' }, t('reg.recall.consumer'))));
  }

  async function loadRecalls () {
    try { state.recalls = await audit('/v1/audit/recalls'); } catch (e) { state.recalls = { recalls: [], error: e.message }; }
    const old = $('#recalls');
    if (old) old.replaceWith(recallsTable());
  }
  function recallsTable () {
    const r = state.recalls;
    if (!r) return h('div', { id: 'recalls' }, '…');
    return h('div', { id: 'recalls' }, r.recalls.length
      ? h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ['at', 'lotcol', 'reasoncol', 'reach'].map((c) => h('th', {}, t('reg.recall.' + c))))),
        h('tbody', {}, r.recalls.map((x) => h('tr', {}, h('td', { class: 'num' }, x.height), h('td', {}, h('code', {}, x.lot)), h('td', {}, x.reason), h('td', { class: 'num' }, x.affected)))))
      : h('p', { class: 'hint' }, r.error || t('reg.recall.none')));
  }

  function recallView () {
    if (!state.recalls) setTimeout(loadRecalls, 0);
    const field = (id, label, attrs) => h('div', { class: 'field' }, h('label', { for: id }, t(label)), h('input', { id, type: 'text', ...attrs }));
    return [
      h('section', { class: 'card' },
        h('h2', {}, t('reg.recall.title')),
        h('p', { class: 'hint' }, t('reg.recall.hint')),
        h('form', { class: 'form', id: 'recall-form', onsubmit: (e) => { e.preventDefault(); preview(); } },
          field('r-gtin', 'reg.recall.gtin', { inputmode: 'numeric' }),
          field('r-lot', 'reg.recall.lot'),
          h('div', { class: 'field wide' }, h('label', { for: 'r-uri' }, t('reg.recall.uri')), h('input', { id: 'r-uri', type: 'text' })),
          h('button', { type: 'submit', id: 'recall-preview' }, t('reg.recall.preview'))),
        h('div', { id: 'preview' })),
      h('section', { class: 'card' }, h('h2', {}, t('reg.recall.list')), recallsTable())
    ];
  }

  // -- page --------------------------------------------------------------------------------
  function header () {
    const other = LANG === 'zh' ? 'en' : 'zh';
    return h('header', { class: 'bar regulator' },
      h('span', { class: 'brand' }, 'ParkTrace ', h('small', {}, t('reg.title'))),
      h('a', { class: 'lang', href: `/regulator/?lang=${other}`, hreflang: other }, t('reg.other_lang')));
  }
  function who () {
    const me = state.me;
    return h('section', { class: 'who' },
      h('strong', {}, LANG === 'zh' ? me.orgNameZh : me.orgName),
      h('span', {}, ` ${me.commonName} · ${me.node || ''}`),
      h('button', { type: 'button', class: 'link', id: 'signout', onclick: signOut }, t('reg.signout')));
  }
  function nav () {
    return h('nav', { class: 'tabs' }, ['health', 'recall'].map((tab) => h('button', {
      type: 'button', class: tab === state.tab ? 'on' : '', id: 'tab-' + tab,
      onclick: () => { state.tab = tab; stopPolling(); render(); }
    }, t('reg.tab.' + tab))));
  }
  function render () {
    const views = { health: healthView, recall: recallView };
    app.replaceChildren(header(), h('main', { class: 'wide' }, state.me ? [who(), nav(), views[state.tab]()] : signInView()));
  }

  async function start () {
    try {
      const key = await K.loadKey(SLOT);
      if (key) {
        state.me = await api('GET', '/regulator/api/me');
        state.key = key;
      }
    } catch (e) {
      state.me = null; state.key = null;
    }
    render();
  }
  window.ptRegulator = { state };
  start();
})();
