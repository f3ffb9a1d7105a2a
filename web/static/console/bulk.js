/* Bulk upload: the node reads the sheet (the CSV `parktrace import` reads) into events
   and per-row refusals; every event is signed here, sent in batches, and followed until
   it commits; the progress bar counts rows signed and committed, and every row that was
   not recorded is listed with its line, field and reason. */
(function () {
  'use strict';
  const BATCH = 500;
  const K = window.ptKeys;

  function view (ctx) {
    const { h, t, filePicker } = ctx;
    const box = h('section', { class: 'card', id: 'bulk' },
      h('h2', {}, t('console.tab.bulk')),
      h('p', { class: 'hint' }, t('console.bulk.hint')),
      h('div', { class: 'field' }, h('p', { class: 'label' }, t('console.field.file')),
        filePicker('bulk-file', { accept: '.csv,text/csv' })),
      h('button', { type: 'button', id: 'bulk-start' }, t('console.bulk.start')),
      h('progress', { id: 'bulk-progress', max: 1, value: 0, hidden: true }),
      h('p', { id: 'bulk-status', 'aria-live': 'polite' }),
      h('div', { id: 'bulk-refusals' }));
    box.querySelector('#bulk-start').addEventListener('click', () => run(ctx, box));
    return box;
  }

  async function run (ctx, box) {
    const { h, t, state, api, plain, Refusal } = ctx;
    const file = box.querySelector('#bulk-file').files[0];
    const status = box.querySelector('#bulk-status');
    const bar = box.querySelector('#bulk-progress');
    const table = box.querySelector('#bulk-refusals');
    if (!file) { status.textContent = t('console.signin.nofile'); return; }
    const button = box.querySelector('#bulk-start');
    button.disabled = true;
    table.replaceChildren();
    const refusals = [];
    const began = performance.now();
    try {
      const sheet = await api('POST', '/console/api/bulk', await file.text(), { 'Content-Type': 'text/csv' });
      refusals.push(...sheet.refusals);
      const total = sheet.total;
      let signedCount = 0;
      let committed = 0;
      bar.hidden = false;
      bar.max = 2 * Math.max(1, sheet.events.length);
      const show = () => {
        bar.value = signedCount + committed;
        status.textContent = t('console.bulk.progress', { done: committed, total });
      };
      show();
      const pending = new Map();
      for (let start = 0; start < sheet.events.length; start += BATCH) {
        const part = sheet.events.slice(start, start + BATCH);
        const txs = [];
        for (const row of part) {
          const signed = await K.signTx(state.key, {
            chainId: state.me.chainId, type: 'epcis.event', payload: row.payload, signer: state.me.fingerprint
          });
          txs.push({ row, signed });
          signedCount += 1;
        }
        show();
        const answer = await api('POST', '/v1/transactions/batch', { transactions: txs.map((x) => x.signed.envelope) });
        answer.results.forEach((item, i) => {
          const { row, signed } = txs[item.index !== undefined ? item.index : i];
          if (item.state === 'pending') pending.set(signed.id, row);
          else {
            refusals.push({ line: row.line, field: String(item.field || '').replace(/^body\.payload\.event\.?/, ''), error: item.error, message: item.message });
            bar.max -= 1;
          }
        });
        show();
      }
      while (pending.size) {
        const ids = Array.from(pending.keys()).slice(0, 1000);
        const answer = await api('POST', '/v1/transactions/status', { ids });
        let moved = false;
        for (const s of answer.statuses) {
          if (s.state === 'pending') continue;
          const row = pending.get(s.id);
          pending.delete(s.id);
          moved = true;
          if (s.state === 'committed') committed += 1;
          else {
            refusals.push({ line: row.line, field: '', error: s.error || s.state, message: s.reason || s.state });
            bar.max -= 1;
          }
        }
        show();
        if (!moved) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      bar.value = bar.max;
      status.replaceChildren(h('span', { class: refusals.length ? 'error' : 'ok', id: 'bulk-done', 'data-committed': committed, 'data-refused': refusals.length, 'data-ms': Math.round(performance.now() - began) },
        t('console.bulk.done', { ok: committed, bad: refusals.length }) + ' ' + t(refusals.length ? 'console.bulk.partial' : 'console.bulk.none_refused')));
    } catch (err) {
      status.textContent = err instanceof Refusal ? plain(err.body) : err.message;
    } finally {
      button.disabled = false;
    }
    if (refusals.length) {
      refusals.sort((a, b) => a.line - b.line);
      table.replaceChildren(h('table', { class: 'grid', id: 'bulk-table' },
        h('tr', {}, h('th', {}, t('console.column.row')), h('th', {}, t('console.column.field')), h('th', {}, t('console.column.reason'))),
        refusals.map((r) => h('tr', { class: 'refused-row', 'data-line': r.line },
          h('td', {}, String(r.line)), h('td', {}, r.field || '—'), h('td', {}, plain({ error: r.error, message: r.message }))))));
    }
  }

  window.ptBulk = { view };
})();
