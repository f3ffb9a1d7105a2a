/* The producer console: role forms that build EPCIS 2.0 events (CBV 2.0 vocabulary,
   +08:00), signed here with the member's key (keys.js) and submitted as ordinary ledger
   transactions; codes and label sheets over RFC 9421 requests signed here; the member's
   lots; bulk upload; and a queue of events signed while offline. */
(function () {
  'use strict';
  const K = window.ptKeys;
  const M = JSON.parse(document.getElementById('messages').textContent);
  const LANG = document.documentElement.lang.startsWith('zh') ? 'zh' : 'en';
  const t = (key, values) => {
    let text = M[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.split('{' + k + '}').join(v);
    return text;
  };
  const EPCIS_CONTEXT = 'https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld';
  const PT = 'https://ns.parktrace.example/epcis/';
  const CONTEXT = [EPCIS_CONTEXT, { pt: PT }];
  const PARK_STEP = 'https://ns.parktrace.example/bizstep/';
  const app = document.getElementById('app');
  const state = { me: null, key: null, tab: 'record', form: null };

  // -- small DOM helpers ---------------------------------------------------------------
  function h (tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  /* A file input in the page's language (the browser's own button speaks its UI language). */
  function filePicker (id, attrs) {
    const name = h('span', { class: 'name' }, t('console.no_file'));
    const control = h('input', { type: 'file', id, name: id, ...attrs });
    control.addEventListener('change', () => { name.textContent = control.files[0] ? control.files[0].name : t('console.no_file'); });
    return h('label', { class: 'file', for: id }, h('span', { class: 'button' }, t('console.choose_file')), name, control);
  }

  // -- values ----------------------------------------------------------------------------
  function pad (n) { return String(n).padStart(2, '0'); }
  /* Now in Beijing time as a datetime-local value (the park's one time zone). */
  function nowLocal (minutesAgo) {
    const d = new Date(Date.now() + 8 * 3600e3 - (minutesAgo || 0) * 60e3);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  const today = () => nowLocal(0).slice(0, 10);
  const eventTime = (local) => (local.length === 16 ? local + ':00' : local) + '+08:00';
  function gtin14 (value) {
    const digits = String(value || '').replace(/\D/g, '');
    return digits.length === 13 ? '0' + digits : digits;
  }
  /* GS1 mod-10 check digit of a GTIN (the last digit). */
  function gtinValid (value) {
    const d = gtin14(value);
    if (!/^\d{14}$/.test(d)) return false;
    let sum = 0;
    for (let i = 0; i < 13; i++) sum += Number(d[i]) * (i % 2 === 0 ? 3 : 1);
    return (10 - (sum % 10)) % 10 === Number(d[13]);
  }
  const lotUri = (gtin, lot) => `https://id.gs1.org/01/${gtin14(gtin)}/10/${encodeURIComponent(lot.trim())}`;
  const localPage = (uri) => uri.replace(/^https:\/\/id\.gs1\.org/, '');
  const lang2 = (en, zh) => [{ '@value': en || zh, '@language': 'en' }, { '@value': zh || en, '@language': 'zh' }];
  const lines = (text) => String(text || '').split(/[\n,;\s]+/).map((s) => s.trim()).filter(Boolean);
  /* An SSCC typed or scanned as 18 digits, (00)…, or already an EPC URI. */
  function ssccUri (value, prefix) {
    const v = String(value).trim();
    if (v.startsWith('urn:')) return v;
    const digits = v.replace(/\D/g, '').replace(/^00(?=\d{18}$)/, '');
    if (digits.length !== 18) return v;
    const p = (prefix || '').length && digits.slice(1).startsWith(prefix) ? prefix.length : 7;
    return `urn:epc:id:sscc:${digits.slice(1, 1 + p)}.${digits[0]}${digits.slice(1 + p, 17)}`;
  }
  function glnUri (value) {
    const v = String(value).trim();
    if (v.startsWith('urn:') || v.startsWith('http')) return v;
    const digits = v.replace(/\D/g, '');
    if (digits.length !== 13) return v;
    return `urn:epc:id:sgln:${digits.slice(0, 7)}.${digits.slice(7, 12)}.0`;
  }
  function sglnDefault (me, location) {
    const prefix = (me.prefixes[0] || '6975123').padStart(7, '0').slice(0, 7);
    return `urn:epc:id:sgln:${prefix}.${String(location).padStart(12 - prefix.length, '0')}.0`;
  }

  // -- the forms of each role ------------------------------------------------------------
  /* Each form: the roles that may use it, its fields, and `build(values, me)` returning
     the EPCIS event and, in `at`, which field each event path came from (so that a
     refusal naming an event path is shown beside the field a person typed it in). */
  const productFields = (prefix) => [
    { name: prefix + 'gtin', type: 'text', inputmode: 'numeric', required: true, pattern: '^\\d{13,14}$' },
    { name: prefix + 'lot', type: 'text', required: true, pattern: '^[!-~]{1,20}$' }
  ];
  const whenField = { name: 'time', type: 'datetime-local', required: true, value: () => nowLocal(1) };
  const FORMS = [
    {
      id: 'harvest', roles: ['producer'],
      fields: [
        ...productFields(''),
        { name: 'weight', type: 'number', required: true, min: 0.001, step: 'any' },
        { name: 'plot', type: 'plot', required: true },
        { name: 'variety', type: 'text' },
        { name: 'harvestDate', type: 'date', required: true, value: today },
        whenField
      ],
      build (v, me) {
        const plot = me.plots.find((p) => p.id === v.plot || p.gln === v.plot);
        const gln = plot ? plot.gln : glnUri(v.plot);
        const event = {
          type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'ADD',
          bizStep: 'commissioning', disposition: 'active', epcList: [],
          quantityList: [{ epcClass: lotUri(v.gtin, v.lot), quantity: Number(v.weight), uom: 'KGM' }],
          readPoint: { id: gln }, bizLocation: { id: gln },
          ilmd: { 'pt:plot': plot ? plot.id : v.plot, 'cbvmda:countryOfOrigin': 'CN' },
          'pt:harvestDate': v.harvestDate
        };
        if (v.variety) event.ilmd['pt:variety'] = lang2(v.variety, v.variety);
        return {
          event,
          lot: lotUri(v.gtin, v.lot),
          at: { quantityList: 'weight', epcClass: 'lot', readPoint: 'plot', bizLocation: 'plot', ilmd: 'plot', 'pt:harvestDate': 'harvestDate', eventTime: 'time' },
          rules: { origin: (m) => (/ t recorded|tolerance|yield/.test(m) ? 'weight' : 'plot'), mass_balance: 'weight', time: 'time', sequence: 'lot' }
        };
      }
    },
    {
      id: 'production', roles: ['producer', 'processor'],
      fields: [
        ...productFields(''),
        { name: 'quantity', type: 'number', required: true, min: 1, step: 'any' },
        { name: 'outUnit', type: 'select', options: ['EA', 'KGM'] },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      build (v, me) {
        const q = { epcClass: lotUri(v.gtin, v.lot), quantity: Number(v.quantity) };
        if (v.outUnit !== 'EA') q.uom = v.outUnit;
        return {
          lot: q.epcClass,
          event: {
            type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'ADD',
            bizStep: 'commissioning', disposition: 'active', epcList: [], quantityList: [q],
            readPoint: { id: glnUri(v.location) }, bizLocation: { id: glnUri(v.location) },
            ilmd: { 'cbvmda:countryOfOrigin': 'CN' }
          },
          at: { quantityList: 'quantity', readPoint: 'location', bizLocation: 'location', eventTime: 'time' }
        };
      }
    },
    {
      id: 'plot', roles: ['producer'],
      fields: [
        { name: 'plotId', type: 'text', required: true, pattern: '^[A-Za-z0-9-]{1,16}$' },
        { name: 'gln', type: 'text', required: true, inputmode: 'numeric' },
        { name: 'crop', type: 'text', required: true, value: 'navel-orange-fresh' },
        { name: 'giZone', type: 'text', required: true, value: 'gannan-navel-orange' },
        { name: 'areaHa', type: 'number', required: true, min: 0.01, step: 'any' },
        { name: 'yieldKg', type: 'number', required: true, min: 1, step: 'any' },
        { name: 'lon', type: 'number', required: true, step: 'any' },
        { name: 'lat', type: 'number', required: true, step: 'any' },
        { name: 'radius', type: 'number', required: true, min: 1, step: 'any', value: '200' },
        { name: 'request', type: 'request' },
        { name: 'approvals', type: 'textarea', required: true }
      ],
      change (v) {
        return {
          plot: {
            id: v.plotId, gln: glnUri(v.gln), crop: v.crop, gi_zone: v.giZone,
            area_ha: Number(v.areaHa), yield_kg_per_ha: Number(v.yieldKg),
            centre: [Number(v.lon), Number(v.lat)], radius_m: Number(v.radius)
          }
        };
      },
      build (v) {
        let approvals;
        try {
          const parsed = JSON.parse(v.approvals.trim().startsWith('[') ? v.approvals : '[' + lines(v.approvals).join(',') + ']');
          approvals = Array.isArray(parsed) ? parsed : [parsed];
        } catch (e) {
          const err = new Error(t('console.check.approvals'));
          err.field = 'approvals';
          throw err;
        }
        return {
          txType: 'plot.register', payload: { change: this.change(v), approvals }, lot: null,
          at: { approvals: 'approvals', gln: 'gln', plot: 'plotId', area_ha: 'areaHa', yield_kg_per_ha: 'yieldKg', centre: 'lat', radius_m: 'radius', crop: 'crop', gi_zone: 'giZone' },
          rules: { plot: 'plotId' }
        };
      }
    },
    {
      id: 'approve', roles: ['validator', 'regulator'],
      fields: [{ name: 'request', type: 'textarea', required: true }],
      build (v) {
        let request;
        try { request = JSON.parse(v.request); } catch (e) { request = null; }
        if (!request || typeof request.change !== 'object' || typeof request.type !== 'string') {
          const err = new Error(t('console.check.request'));
          err.field = 'request';
          throw err;
        }
        return { approval: request };
      }
    },
    {
      id: 'cultivation', roles: ['producer'],
      fields: [
        ...productFields(''),
        { name: 'plot', type: 'plot', required: true },
        { name: 'input', type: 'text', required: true },
        { name: 'inputKind', type: 'select', options: ['fertiliser', 'pesticide', 'irrigation', 'other'] },
        { name: 'amount', type: 'text' },
        { name: 'appliedOn', type: 'date', required: true, value: today },
        whenField
      ],
      build (v, me) {
        const plot = me.plots.find((p) => p.id === v.plot || p.gln === v.plot);
        const gln = plot ? plot.gln : glnUri(v.plot);
        return {
          lot: lotUri(v.gtin, v.lot),
          event: {
            type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'OBSERVE',
            bizStep: PARK_STEP + 'cultivating', epcList: [],
            quantityList: [{ epcClass: lotUri(v.gtin, v.lot) }],
            readPoint: { id: gln }, bizLocation: { id: gln },
            'pt:inputs': [{ 'pt:name': v.input, 'pt:kind': v.inputKind, 'pt:amount': v.amount, 'pt:date': v.appliedOn }]
          },
          at: { readPoint: 'plot', quantityList: 'lot', eventTime: 'time', 'pt:inputs': 'input' }
        };
      }
    },
    {
      id: 'transformation', roles: ['processor'],
      fields: [
        { name: 'inputs', type: 'rows', required: true, columns: ['gtin', 'lot', 'quantity'], rows: 2 },
        ...productFields('out_'),
        { name: 'outQuantity', type: 'number', required: true, min: 1, step: 'any' },
        { name: 'outUnit', type: 'select', options: ['EA', 'KGM'] },
        { name: 'process', type: 'select', options: ['creating_class_instance', 'drying', 'grinding'] },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      build (v, me) {
        const rows = v.inputs.filter((r) => r.gtin || r.lot);
        const output = { epcClass: lotUri(v.out_gtin, v.out_lot), quantity: Number(v.outQuantity) };
        if (v.outUnit !== 'EA') output.uom = v.outUnit;
        const step = v.process === 'creating_class_instance' ? v.process : PARK_STEP + v.process;
        return {
          lot: output.epcClass,
          event: {
            type: 'TransformationEvent', eventTime: eventTime(v.time),
            bizStep: step, disposition: 'active',
            transformationID: 'urn:uuid:' + crypto.randomUUID(),
            inputQuantityList: rows.map((r) => ({ epcClass: lotUri(r.gtin, r.lot), quantity: Number(r.quantity), uom: 'KGM' })),
            outputQuantityList: [output],
            readPoint: { id: glnUri(v.location) }, bizLocation: { id: glnUri(v.location) }
          },
          at: { inputQuantityList: 'inputs', outputQuantityList: 'outQuantity', readPoint: 'location', bizLocation: 'location', eventTime: 'time' }
        };
      }
    },
    {
      id: 'packing', roles: ['processor', 'producer', 'logistics'],
      fields: [
        { name: 'parent', type: 'text', required: true, inputmode: 'numeric' },
        { name: 'children', type: 'textarea' },
        ...productFields('lot_').map((f) => ({ ...f, required: false })),
        { name: 'lotQuantity', type: 'number', min: 0, step: 'any' },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      build (v, me) {
        const event = {
          type: 'AggregationEvent', eventTime: eventTime(v.time), action: 'ADD',
          bizStep: 'packing', disposition: 'in_progress',
          parentID: ssccUri(v.parent, me.prefixes[0]),
          childEPCs: lines(v.children).map((c) => ssccUri(c, me.prefixes[0])),
          readPoint: { id: glnUri(v.location) }
        };
        let lot = null;
        if (v.lot_gtin && v.lot_lot) {
          lot = lotUri(v.lot_gtin, v.lot_lot);
          const q = { epcClass: lot };
          if (v.lotQuantity) { q.quantity = Number(v.lotQuantity); q.uom = 'KGM'; }
          event.childQuantityList = [q];
        }
        return { event, lot, at: { parentID: 'parent', childEPCs: 'children', childQuantityList: 'lotQuantity', readPoint: 'location', eventTime: 'time' } };
      }
    },
    {
      id: 'inspection', roles: ['inspector'],
      fields: [
        ...productFields(''),
        { name: 'sample', type: 'number', min: 0, step: 'any', value: '3' },
        { name: 'results', type: 'rows', required: true, columns: ['test', 'value', 'limit', 'unit', 'verdict'], rows: 2 },
        { name: 'certificateNo', type: 'text' },
        { name: 'certificate', type: 'file' },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      async build (v, me) {
        const results = v.results.filter((r) => r.test);
        const failed = results.some((r) => r.verdict === 'fail');
        const event = {
          type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'OBSERVE',
          bizStep: 'inspecting', disposition: failed ? 'non_conformant' : 'conformant', epcList: [],
          quantityList: [{ epcClass: lotUri(v.gtin, v.lot), quantity: Number(v.sample || 1) }],
          readPoint: { id: glnUri(v.location) },
          'pt:results': results.map((r) => ({
            'pt:test': lang2(r.test, r.test), 'pt:value': r.value, 'pt:limit': r.limit, 'pt:unit': r.unit, 'pt:result': r.verdict || 'pass'
          }))
        };
        if (v.certificateNo || v.certificate) {
          const cert = { 'pt:number': v.certificateNo || '', 'pt:name': lang2('Inspection report', '检验报告') };
          if (v.certificate) {
            // Content-addressed: the event records the file's hash; the file stays with its holder.
            cert['pt:sha256'] = K.hex(await K.sha256(new Uint8Array(await v.certificate.arrayBuffer())));
            cert['pt:file'] = v.certificate.name;
          }
          event['pt:certificate'] = cert;
        }
        return { event, lot: lotUri(v.gtin, v.lot), at: { quantityList: 'lot', 'pt:results': 'results', readPoint: 'location', eventTime: 'time', 'pt:certificate': 'certificateNo' } };
      }
    },
    {
      id: 'shipping', roles: ['logistics', 'processor', 'producer'],
      fields: [
        { name: 'units', type: 'textarea', required: true },
        { name: 'location', type: 'location', required: true },
        { name: 'destination', type: 'text', required: true },
        { name: 'tempMin', type: 'number', step: 'any' },
        { name: 'tempMax', type: 'number', step: 'any' },
        whenField
      ],
      build (v, me) {
        const event = {
          type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'OBSERVE',
          bizStep: 'shipping', disposition: 'in_transit',
          epcList: lines(v.units).map((c) => ssccUri(c, me.prefixes[0])),
          readPoint: { id: glnUri(v.location) },
          destinationList: [{ type: 'location', destination: glnUri(v.destination) }]
        };
        if (v.tempMin !== '' || v.tempMax !== '') {
          event.sensorElementList = [{
            sensorMetadata: { time: eventTime(v.time) },
            sensorReport: [{ type: 'Temperature', minValue: Number(v.tempMin || v.tempMax), maxValue: Number(v.tempMax || v.tempMin), uom: 'CEL' }]
          }];
        }
        return { event, lot: null, at: { epcList: 'units', readPoint: 'location', destinationList: 'destination', sensorElementList: 'tempMax', eventTime: 'time' } };
      }
    },
    {
      id: 'receiving', roles: ['logistics', 'retailer', 'processor'],
      fields: [
        { name: 'units', type: 'textarea', required: true },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      build (v, me) {
        return {
          lot: null,
          event: {
            type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'OBSERVE',
            bizStep: 'receiving', disposition: 'in_progress',
            epcList: lines(v.units).map((c) => ssccUri(c, me.prefixes[0])),
            readPoint: { id: glnUri(v.location) }, bizLocation: { id: glnUri(v.location) }
          },
          at: { epcList: 'units', readPoint: 'location', bizLocation: 'location', eventTime: 'time' }
        };
      }
    },
    {
      id: 'selling', roles: ['retailer'],
      fields: [
        ...productFields(''),
        { name: 'quantity', type: 'number', required: true, min: 1, step: 'any' },
        { name: 'location', type: 'location', required: true },
        whenField
      ],
      build (v, me) {
        return {
          lot: lotUri(v.gtin, v.lot),
          event: {
            type: 'ObjectEvent', eventTime: eventTime(v.time), action: 'OBSERVE',
            bizStep: 'retail_selling', disposition: 'retail_sold', epcList: [],
            quantityList: [{ epcClass: lotUri(v.gtin, v.lot), quantity: Number(v.quantity), uom: 'KGM' }],
            readPoint: { id: glnUri(v.location) }, bizLocation: { id: glnUri(v.location) }
          },
          at: { quantityList: 'quantity', readPoint: 'location', bizLocation: 'location', eventTime: 'time' }
        };
      }
    }
  ];

  // -- network ---------------------------------------------------------------------------
  class Refusal extends Error {
    constructor (status, body) { super(body.message || String(status)); this.status = status; this.body = body; }
  }
  /* A node past what the consortium commits answers 503 with Retry-After: wait as told
     (for up to two minutes) and send again. Signed requests are not resent: a signature
     is good for one request. */
  const BUSY_PATIENCE_MS = 120000;
  async function api (method, path, body, headers) {
    const deadline = Date.now() + BUSY_PATIENCE_MS;
    let response;
    for (;;) {
      try {
        response = await fetch(path, {
          method, headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(headers || {}) },
          body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
          credentials: 'same-origin'
        });
      } catch (e) {
        const offline = new Error(t('console.offline'));
        offline.offline = true;
        throw offline;
      }
      const pause = 1000 * Number(response.headers.get('retry-after') || 0);
      if (response.status !== 503 || !pause || headers || Date.now() + pause > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    if (response.status === 204) return null;
    const type = response.headers.get('content-type') || '';
    const data = type.includes('json') ? await response.json() : await response.blob();
    if (!response.ok) throw new Refusal(response.status, type.includes('json') ? data : { message: String(response.status) });
    return data;
  }
  /* A request signed (RFC 9421) with the member's key: what codes and labels need. */
  async function signed (method, path, body) {
    const bytes = body === undefined ? new Uint8Array() : K.utf8(JSON.stringify(body));
    const headers = await K.signRequest(state.key, state.me.fingerprint, method, path, bytes);
    return api(method, path, body === undefined ? undefined : new TextDecoder().decode(bytes), headers);
  }
  async function signEvent (event, timestamp) {
    event = { '@context': CONTEXT, eventID: 'urn:uuid:' + crypto.randomUUID(), eventTimeZoneOffset: '+08:00', ...event };
    return K.signTx(state.key, { chainId: state.me.chainId, type: 'epcis.event', payload: { event }, signer: state.me.fingerprint, timestamp });
  }
  async function submit (envelope) {
    const accepted = await api('POST', '/v1/transactions', envelope);
    for (let i = 0; i < 12; i++) {
      const status = await api('GET', `/v1/transactions/${accepted.id}?wait=10`);
      if (status.state !== 'pending') {
        if (status.state === 'rejected') throw new Refusal(422, { error: status.error, message: status.reason });
        return status;
      }
    }
    return { id: accepted.id, state: 'pending' };
  }

  // -- refusals in plain words -------------------------------------------------------------
  /* The rule a refusal of the park's trust rules names ("origin rule: …"). */
  function ruleOf (body) {
    const m = /^([a-z ]+) rule: /.exec(body.message || '');
    return body.error === 'rule_violation' && m ? m[1].replace(/ /g, '_') : null;
  }
  function plain (body) {
    const rule = ruleOf(body);
    const key = rule && M['console.rule.' + rule] ? 'console.rule.' + rule : 'console.error.' + (body.error || '');
    const head = M[key] ? t(key) : '';
    const detail = rule ? String(body.message).replace(/^[a-z ]+ rule: /, '') : (body.message || '');
    return head ? `${head}${LANG === 'zh' ? '：' : ': '}${detail}` : (detail || t('console.refused'));
  }
  /* The form field a refusal names: the longest known prefix of its event path. */
  function fieldOf (path, at) {
    if (!path) return null;
    const parts = String(path).replace(/^(payload\.)?(event\.|body\.payload\.event\.)?/, '').split(/[.[\]]/).filter(Boolean);
    for (let n = parts.length; n > 0; n--) {
      for (let i = n - 1; i >= 0; i--) if (at[parts[i]]) return at[parts[i]];
    }
    return null;
  }

  // -- lots the member recorded (this browser remembers them) --------------------------------
  const LOTS = 'pt-console-lots';
  function myLots () { try { return JSON.parse(localStorage.getItem(LOTS) || '[]'); } catch (e) { return []; } }
  function remember (lot) {
    if (!lot) return;
    const lots = myLots().filter((l) => l !== lot);
    lots.unshift(lot);
    localStorage.setItem(LOTS, JSON.stringify(lots.slice(0, 200)));
  }

  // -- rendering -------------------------------------------------------------------------------
  function header () {
    const other = LANG === 'zh' ? 'en' : 'zh';
    return h('header', { class: 'bar' },
      h('span', { class: 'brand' }, 'ParkTrace ', h('small', {}, t('console.title'))),
      h('span', { class: 'net', id: 'net' }, navigator.onLine ? '' : t('console.offline_badge')),
      h('a', { class: 'lang', href: `/console/?lang=${other}`, hreflang: other }, t('console.other_lang')));
  }

  function signInView (message) {
    const form = h('form', { class: 'card signin', id: 'signin' },
      h('h1', {}, t('console.signin.title')),
      h('p', { class: 'hint' }, t('console.signin.hint')),
      h('div', { class: 'field' }, h('p', { class: 'label' }, t('console.signin.keyfile')), filePicker('keyfile', { accept: '.key,.pem' })),
      h('div', { class: 'field' }, h('label', { for: 'passphrase' }, t('console.signin.passphrase')), h('input', { type: 'password', name: 'passphrase', id: 'passphrase', autocomplete: 'current-password' })),
      h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message || ''),
      h('button', { type: 'submit', id: 'signin-button' }, t('console.signin.button')),
      h('p', { class: 'hint small' }, t('console.signin.private')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const error = $('#signin-error');
      error.textContent = '';
      const file = $('#keyfile').files[0];
      if (!file) { error.textContent = t('console.signin.nofile'); return; }
      try {
        const key = await K.importKeyFile(await file.text(), $('#passphrase').value);
        $('#passphrase').value = '';
        const challenge = await api('POST', '/console/api/challenge');
        const signature = await K.answerChallenge(key, challenge);
        state.me = await api('POST', '/console/api/session', { challenge: challenge.challenge, signature });
        state.key = key;
        await K.saveKey(key);
        render();
      } catch (err) {
        error.textContent = err instanceof K.KeyFileError
          ? t(err.code === 'passphrase' ? 'console.signin.passphrase_error' : 'console.signin.format', { detail: err.message })
          : (err instanceof Refusal ? plain(err.body) : err.message);
      }
    });
    return form;
  }

  function allowed (form) { return form.roles.some((r) => state.me.roles.includes(r)); }

  function nav () {
    const tabs = ['record', 'codes', 'lots', 'bulk', 'queue'];
    return h('nav', { class: 'tabs' }, tabs.map((tab) => h('button', {
      type: 'button', class: tab === state.tab ? 'on' : '', id: 'tab-' + tab,
      onclick: () => { state.tab = tab; render(); }
    }, t('console.tab.' + tab))));
  }

  function who () {
    const me = state.me;
    return h('section', { class: 'who' },
      h('strong', {}, LANG === 'zh' ? me.orgNameZh : me.orgName),
      h('span', {}, ` ${me.commonName} · ${me.roles.map((r) => t('console.role.' + r)).join(LANG === 'zh' ? '、' : ', ')}`),
      h('button', { type: 'button', class: 'link', id: 'signout', onclick: signOut }, t('console.signout')));
  }

  async function signOut () {
    await K.forgetKey();
    try { await api('DELETE', '/console/api/session'); } catch (e) { /* offline: the key is gone anyway */ }
    state.me = null; state.key = null;
    render();
  }

  function input (field, me) {
    const id = 'f-' + field.name;
    const label = t('console.field.' + field.name);
    const value = typeof field.value === 'function' ? field.value() : field.value;
    let control;
    if (field.type === 'select') {
      control = h('select', { id, name: field.name }, field.options.map((o) => h('option', { value: o }, t('console.option.' + o))));
    } else if (field.type === 'plot') {
      control = h('select', { id, name: field.name, required: field.required },
        me.plots.length ? null : h('option', { value: '' }, t('console.noplots')),
        me.plots.map((p) => h('option', { value: p.id }, `${p.id} · GLN ${p.gln.split('/').pop()}`)));
    } else if (field.type === 'location') {
      control = h('input', { id, name: field.name, type: 'text', required: field.required, value: sglnDefault(me, 1), list: 'glns' });
    } else if (field.type === 'request') {
      const out = h('textarea', { id, name: field.name, rows: 4, readonly: true });
      const make = h('button', { type: 'button', class: 'secondary', id: 'make-request' }, t('console.plot.make_request'));
      make.addEventListener('click', () => {
        const formEl = make.closest('form');
        const def = FORMS.find((f) => f.id === state.form);
        out.value = JSON.stringify({ chain_id: state.me.chainId, type: 'plot.register', change: def.change(valuesOf(formEl, def)) });
        out.select();
      });
      control = h('div', {}, make, out);
    } else if (field.type === 'file') {
      control = filePicker(id, { accept: '.pdf,.jpg,.png' });
    } else if (field.type === 'textarea') {
      control = h('textarea', { id, name: field.name, rows: 3, required: field.required });
    } else if (field.type === 'rows') {
      control = h('div', { class: 'rows', id },
        Array.from({ length: field.rows }, (_, i) => h('div', { class: 'row' }, field.columns.map((c) =>
          c === 'verdict'
            ? h('select', { name: `${field.name}.${i}.${c}`, 'aria-label': t('console.column.' + c) },
              h('option', { value: 'pass' }, t('console.option.pass')), h('option', { value: 'fail' }, t('console.option.fail')))
            : h('input', { name: `${field.name}.${i}.${c}`, placeholder: t('console.column.' + c), 'aria-label': t('console.column.' + c), inputmode: c === 'quantity' ? 'decimal' : null })))));
    } else {
      control = h('input', {
        id, name: field.name, type: field.type, required: field.required, value, min: field.min, step: field.step,
        inputmode: field.inputmode, pattern: field.pattern, accept: field.type === 'file' ? '.pdf,.jpg,.png' : null
      });
    }
    return h('div', { class: 'field', 'data-field': field.name },
      h('label', { for: id }, label), control, h('p', { class: 'error', id: 'err-' + field.name, role: 'alert' }));
  }

  function valuesOf (formEl, def) {
    const values = {};
    for (const field of def.fields) {
      if (field.type === 'rows') {
        values[field.name] = Array.from({ length: field.rows }, (_, i) => Object.fromEntries(field.columns.map((c) =>
          [c, (formEl.elements[`${field.name}.${i}.${c}`] || {}).value || ''])));
      } else if (field.type === 'file') {
        values[field.name] = $('#f-' + field.name, formEl).files[0] || null;
      } else {
        values[field.name] = (formEl.elements[field.name].value || '').trim();
      }
    }
    return values;
  }

  function check (def, values) {
    const problems = {};
    for (const field of def.fields) {
      const v = values[field.name];
      if (field.type === 'request') continue;
      if (field.type === 'rows') {
        if (field.required && !v.some((r) => Object.values(r).some(Boolean))) problems[field.name] = t('console.check.required');
        if (v.some((r) => r.quantity !== undefined && (r.gtin || r.lot) && !(Number(r.quantity) > 0))) problems[field.name] = t('console.check.quantity');
        if (v.some((r) => r.gtin && !gtinValid(r.gtin))) problems[field.name] = t('console.check.gtin');
        continue;
      }
      if (field.required && !v) { problems[field.name] = t('console.check.required'); continue; }
      if (v && field.pattern && !new RegExp(field.pattern).test(v)) problems[field.name] = t(field.name.endsWith('gtin') ? 'console.check.gtin' : 'console.check.lot');
      else if (v && field.name.endsWith('gtin') && !gtinValid(v)) problems[field.name] = t('console.check.gtin_digit');
      if (v && field.type === 'number' && field.min !== undefined && !(Number(v) >= field.min)) problems[field.name] = t('console.check.quantity');
    }
    return problems;
  }

  function showProblems (formEl, problems) {
    for (const el of formEl.querySelectorAll('.field .error')) el.textContent = '';
    for (const el of formEl.querySelectorAll('.field.bad')) el.classList.remove('bad');
    for (const [name, text] of Object.entries(problems)) {
      const el = $('#err-' + name, formEl);
      if (el) { el.textContent = text; el.parentElement.classList.add('bad'); }
    }
  }

  function recordView () {
    const forms = FORMS.filter(allowed);
    if (!state.form || !forms.find((f) => f.id === state.form)) state.form = forms.length ? forms[0].id : null;
    const def = FORMS.find((f) => f.id === state.form);
    const picker = h('div', { class: 'chips' }, forms.map((f) => h('button', {
      type: 'button', class: f.id === state.form ? 'on' : '', id: 'form-' + f.id,
      onclick: () => { state.form = f.id; render(); }
    }, t('console.form.' + f.id))));
    if (!def) return h('section', { class: 'card' }, t('console.noforms'));
    const formEl = h('form', { class: 'card form', id: 'event-form', novalidate: true },
      h('h2', {}, t('console.form.' + def.id)),
      h('p', { class: 'hint' }, t('console.help.' + def.id)),
      def.fields.map((f) => input(f, state.me)),
      h('p', { class: 'error', id: 'form-error', role: 'alert' }),
      h('button', { type: 'submit', id: 'record' }, t('console.record')),
      h('div', { class: 'result', id: 'result', 'aria-live': 'polite' }));
    formEl.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values = valuesOf(formEl, def);
      const problems = check(def, values);
      showProblems(formEl, problems);
      $('#form-error', formEl).textContent = '';
      $('#result', formEl).textContent = '';
      if (Object.keys(problems).length) return;
      const button = $('#record', formEl);
      button.disabled = true;
      try {
        const built = await def.build(values, state.me);
        if (built.approval) {
          await approve(built.approval, formEl);
          return;
        }
        const signedTx = built.txType
          ? await K.signTx(state.key, { chainId: state.me.chainId, type: built.txType, payload: built.payload, signer: state.me.fingerprint })
          : await signEvent(built.event);
        await deliver(signedTx, built, formEl);
      } catch (err) {
        if (err.field) showProblems(formEl, { [err.field]: err.message });
        else $('#form-error', formEl).textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
    return h('div', {}, picker, formEl,
      h('datalist', { id: 'glns' }, state.me.plots.map((p) => h('option', { value: p.gln }, p.id))));
  }

  async function deliver (signedTx, built, formEl) {
    const result = $('#result', formEl);
    if (!navigator.onLine) return enqueue(signedTx, built, result);
    try {
      const status = await submit(signedTx.envelope);
      remember(built.lot);
      if (built.txType === 'plot.register') state.me = await api('GET', '/console/api/me');
      result.replaceChildren(
        h('p', { class: 'ok', id: 'committed', 'data-height': status.height, 'data-tx': status.id }, status.state === 'committed'
          ? t('console.committed', { height: status.height }) : t('console.pending')),
        built.lot ? h('a', { href: localPage(built.lot), target: '_blank', id: 'consumer-link' }, t('console.consumer_page')) : '');
    } catch (err) {
      if (err.offline) return enqueue(signedTx, built, result);
      if (!(err instanceof Refusal)) throw err;
      const byRule = (built.rules || {})[ruleOf(err.body)];
      const field = fieldOf(err.body.field, built.at || {}) ||
        (typeof byRule === 'function' ? byRule(err.body.message || '') : byRule);
      const text = plain(err.body);
      if (field && $('#err-' + field, formEl)) showProblems(formEl, { [field]: text });
      else $('#form-error', formEl).textContent = text;
    }
  }

  /* An approval of a change (ledger/membership.py): the change, its type and the chain,
     RFC 8785 after the domain tag "parktrace/v1/approval\n", signed with this key. */
  async function approve (request, formEl) {
    if (request.chain_id && request.chain_id !== state.me.chainId) {
      showProblems(formEl, { request: t('console.check.request') });
      return;
    }
    const body = { chain_id: state.me.chainId, type: request.type, change: request.change };
    const signature = await K.sign(state.key, K.utf8('parktrace/v1/approval\n' + window.canonicalize(body)));
    const approval = { signer: state.me.fingerprint, signature: { scheme: 'ed25519', value: K.b64(signature) } };
    const plot = request.change.plot || {};
    $('#result', formEl).replaceChildren(
      h('p', { class: 'ok' }, t('console.plot.approved', { id: plot.id || '', type: request.type })),
      h('textarea', { id: 'approval', rows: 4, readonly: true }, JSON.stringify(approval)));
  }

  async function enqueue (signedTx, built, result) {
    await K.queue.add({ id: signedTx.id, envelope: signedTx.envelope, lot: built.lot, at: Date.now(), eventTime: (signedTx.envelope.body.payload.event || {}).eventTime || signedTx.envelope.body.timestamp });
    result.replaceChildren(h('p', { class: 'queued', id: 'queued' }, t('console.queued')));
    updateNet();
  }

  async function flushQueue () {
    if (!state.me || !navigator.onLine) return;
    const items = await K.queue.all();
    for (const item of items) {
      try {
        await submit(item.envelope);
        remember(item.lot);
        await K.queue.remove(item.id);
      } catch (err) {
        if (err.offline) break;
        if (err instanceof Refusal) { item.refusal = plain(err.body); await K.queue.add(item); }
      }
    }
    updateNet();
    if (state.tab === 'queue') render();
  }

  async function updateNet () {
    const el = $('#net');
    if (!el) return;
    const items = state.me ? await K.queue.all() : [];
    el.textContent = (navigator.onLine ? '' : t('console.offline_badge') + ' ') + (items.length ? t('console.queue_badge', { n: items.length }) : '');
  }

  function queueView () {
    const box = h('section', { class: 'card', id: 'queue' }, h('h2', {}, t('console.tab.queue')), h('p', { class: 'hint' }, t('console.help.queue')));
    K.queue.all().then((items) => {
      if (!items.length) { box.append(h('p', { id: 'queue-empty' }, t('console.queue.empty'))); return; }
      box.append(h('table', { class: 'grid' },
        h('tr', {}, h('th', {}, t('console.column.eventTime')), h('th', {}, t('console.column.lot')), h('th', {}, t('console.column.state'))),
        items.map((i) => h('tr', { class: 'queued-item', 'data-event-time': i.eventTime },
          h('td', {}, String(i.eventTime).slice(0, 16).replace('T', ' ')),
          h('td', {}, i.lot ? decodeURIComponent(i.lot.split('/').pop()) : ''),
          h('td', {}, i.refusal || t('console.queue.waiting'))))),
      h('button', { type: 'button', id: 'flush', onclick: flushQueue }, t('console.queue.send')));
    });
    return box;
  }

  // -- codes and labels ---------------------------------------------------------------------
  function codesView () {
    const me = state.me;
    const fields = [
      ...productFields(''),
      { name: 'count', type: 'number', required: true, min: 1, step: 1, value: '40' },
      { name: 'nameZh', type: 'text', required: true },
      { name: 'nameEn', type: 'text' },
      { name: 'productionDate', type: 'date', required: true, value: today },
      { name: 'expiryDate', type: 'date' }
    ];
    const def = { fields };
    const formEl = h('form', { class: 'card form', id: 'codes-form', novalidate: true },
      h('h2', {}, t('console.tab.codes')), h('p', { class: 'hint' }, t('console.help.codes')),
      fields.map((f) => input(f, me)),
      h('p', { class: 'error', id: 'form-error', role: 'alert' }),
      h('button', { type: 'submit', id: 'issue' }, t('console.codes.issue')),
      h('div', { class: 'result', id: 'result', 'aria-live': 'polite' }));
    formEl.addEventListener('submit', async (e) => {
      e.preventDefault();
      const v = valuesOf(formEl, def);
      const problems = check(def, v);
      showProblems(formEl, problems);
      if (Object.keys(problems).length) return;
      const yymmdd = (d) => d.replace(/-/g, '').slice(2);
      const attributes = { 7007: yymmdd(v.productionDate), 422: '156' };
      if (v.expiryDate) attributes['17'] = yymmdd(v.expiryDate);
      const names = { zh: v.nameZh };
      if (v.nameEn) names.en = v.nameEn;
      const result = $('#result', formEl);
      $('#issue', formEl).disabled = true;
      try {
        const issued = await signed('POST', '/v1/codes', { gtin: gtin14(v.gtin), lot: v.lot, count: Number(v.count), attributes, names });
        result.replaceChildren(h('p', {}, t('console.pending')));
        let batch;
        for (let i = 0; i < 30; i++) {
          await api('GET', `/v1/transactions/${issued.transaction}?wait=5`);
          batch = await api('GET', issued.status_url);
          if (batch.state !== 'pending') break;
        }
        if (batch.state !== 'committed') throw new Refusal(422, { message: batch.reason || batch.state });
        remember(lotUri(v.gtin, v.lot));
        await showBatch(result, issued.transaction, batch);
      } catch (err) {
        const text = err instanceof Refusal ? plain(err.body) : err.message;
        const field = err.body && ({ gtin: 'gtin', lot: 'lot', count: 'count', names: 'nameZh' })[String(err.body.field || '').split('.')[0]];
        if (field) showProblems(formEl, { [field]: text }); else $('#form-error', formEl).textContent = text;
      } finally {
        $('#issue', formEl).disabled = false;
      }
    });
    return formEl;
  }

  async function showBatch (box, tx, batch) {
    const list = await signed('GET', `/v1/codes/batches/${tx}/codes?offset=0&limit=${Math.min(batch.count, 6)}`);
    const pdf = await signed('GET', `/v1/codes/batches/${tx}/labels.pdf?offset=0&limit=${Math.min(batch.count, 1000)}`);
    const url = URL.createObjectURL(pdf);
    box.replaceChildren(
      h('p', { class: 'ok', id: 'committed', 'data-height': batch.height, 'data-tx': tx }, t('console.codes.done', { count: batch.count, height: batch.height })),
      h('a', { class: 'button', id: 'labels-pdf', href: url, download: `labels-${batch.batch.slice(0, 8)}.pdf` }, t('console.codes.pdf')),
      h('div', { class: 'previews' }, list.codes.map((c) => h('figure', {},
        h('img', { src: `/v1/codes/qr.svg?uri=${encodeURIComponent(c.uri)}`, alt: c.serial, width: 96, height: 96 }),
        h('figcaption', {}, c.serial),
        h('a', { href: `/v1/codes/qr.png?uri=${encodeURIComponent(c.uri)}&scale=8`, download: `${c.serial}.png` }, 'PNG'), ' ',
        h('a', { href: `/v1/codes/qr.svg?uri=${encodeURIComponent(c.uri)}`, download: `${c.serial}.svg` }, 'SVG')))));
  }

  // -- my lots -----------------------------------------------------------------------------
  function lotsView () {
    const box = h('section', { class: 'card', id: 'lots' }, h('h2', {}, t('console.tab.lots')));
    const lots = myLots();
    if (!lots.length) box.append(h('p', {}, t('console.lots.empty')));
    for (const lot of lots) {
      const [, gtin, number] = /\/01\/(\d+)\/10\/([^/?]+)/.exec(lot) || [null, '', lot];
      const item = h('article', { class: 'lot' }, h('h3', {}, `${t('console.column.lot')} ${decodeURIComponent(number)}`, h('small', {}, ` · GTIN ${gtin}`)));
      box.append(item);
      api('GET', '/console/api/lot?id=' + encodeURIComponent(lot)).then((view) => {
        item.append(
          h('p', {}, h('span', { class: 'state state-' + view.state }, t('console.state.' + view.state)), ' ',
            h('a', { href: localPage(lot), target: '_blank' }, t('console.consumer_page')), ' ',
            h('button', { type: 'button', class: 'link', onclick: () => bundle(view) }, t('console.lots.bundle'))),
          h('ol', { class: 'events' }, view.events.map((e) => h('li', {},
            `${M['console.step.' + e.bizStep] ? t('console.step.' + e.bizStep) : e.bizStep} · ${String(e.eventTime).slice(0, 16).replace('T', ' ')} · `,
            t('console.block', { height: e.height }), e.receipt ? ' · ' + t('console.receipt') : ''))),
          ...(view.codes || []).map((b) => h('div', { class: 'batch' },
            h('p', { class: 'scans', 'data-scans': b.scans, 'data-copied': b.copied.length },
              t('console.lots.codes', { count: b.count, height: b.height, scans: b.scans })),
            b.copied.length
              ? h('p', { class: 'error copied' }, t('console.lots.copied', { n: b.copied.length }) + ' ' +
                b.copied.slice(0, 10).map((c) => `${c.serial} (${c.warnings.map((w) => t('console.warning.' + w)).join(', ')})`).join('; '))
              : '')));
      }).catch((err) => item.append(h('p', { class: 'error' }, err.message)));
    }
    return box;
  }

  function bundle (view) {
    const data = { lot: view.lot, genesis_hash: view.genesis_hash, events: view.events.map((e) => ({ transaction: e.tx, height: e.height, event: e.event, receipt: e.receipt })) };
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' }));
    const a = h('a', { href: url, download: 'evidence-' + view.lot.split('/').pop() + '.json' });
    document.body.append(a); a.click(); a.remove();
  }

  // -- bulk --------------------------------------------------------------------------------
  function bulkView () {
    return window.ptBulk ? window.ptBulk.view({ h, t, filePicker, state, signEvent, api, plain, Refusal, remember }) : h('section', { class: 'card' }, '');
  }

  // -- page ---------------------------------------------------------------------------------
  function render () {
    const views = { record: recordView, codes: codesView, lots: lotsView, bulk: bulkView, queue: queueView };
    app.replaceChildren(header(), h('main', {}, state.me
      ? [who(), nav(), views[state.tab]()]
      : signInView()));
    updateNet();
  }

  async function start () {
    try {
      const key = await K.loadKey();
      if (key) {
        state.me = await api('GET', '/console/api/me');
        state.key = key;
      }
    } catch (e) {
      if (e.offline && state.key) { /* keep the key; the queue still works */ }
      state.me = state.me && state.key ? state.me : null;
    }
    render();
    flushQueue();
  }
  window.addEventListener('online', () => { updateNet(); flushQueue(); });
  window.addEventListener('offline', updateNet);
  window.ptConsole = { state, flushQueue, FORMS };
  start();
})();
