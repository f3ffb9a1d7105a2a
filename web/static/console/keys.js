/* The member's key in the browser: imported once from the PKCS#8 key file the consortium
   tool writes (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC when it has a passphrase), kept in
   IndexedDB as a non-extractable WebCrypto Ed25519 key, and used to sign transactions,
   sign-in challenges and RFC 9421 requests. The decrypted key bytes exist only inside
   importKeyFile and are wiped before it returns; nothing here sends them anywhere. */
(function () {
  'use strict';
  const DB = 'parktrace-console';
  const KEYS = 'keys';
  const QUEUE = 'queue';
  const OID = {
    pbes2: '1.2.840.113549.1.5.13',
    pbkdf2: '1.2.840.113549.1.5.12',
    hmacSha1: '1.2.840.113549.2.7',
    hmacSha256: '1.2.840.113549.2.9',
    aes256cbc: '2.16.840.1.101.3.4.1.42',
    aes128cbc: '2.16.840.1.101.3.4.1.2'
  };

  class KeyFileError extends Error {
    constructor (code, message) { super(message); this.code = code; }
  }

  // -- bytes -------------------------------------------------------------------------
  const utf8 = (text) => new TextEncoder().encode(text);
  function b64 (bytes) {
    let s = '';
    const view = new Uint8Array(bytes);
    for (let i = 0; i < view.length; i++) s += String.fromCharCode(view[i]);
    return btoa(s);
  }
  function unb64 (text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
  async function sha256 (bytes) { return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)); }

  // -- DER: just enough to read an EncryptedPrivateKeyInfo (RFC 5958, RFC 8018) ----------
  function der (bytes, at = 0) {
    const tag = bytes[at];
    let len = bytes[at + 1];
    let head = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 3) throw new KeyFileError('format', 'bad DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | bytes[at + 2 + i];
      head += n;
    }
    const start = at + head;
    if (start + len > bytes.length) throw new KeyFileError('format', 'truncated DER');
    return { tag, start, end: start + len, next: start + len, bytes };
  }
  function children (node) {
    const out = [];
    for (let at = node.start; at < node.end;) { const c = der(node.bytes, at); out.push(c); at = c.next; }
    return out;
  }
  const content = (node) => node.bytes.slice(node.start, node.end);
  function oid (node) {
    const b = content(node);
    const parts = [Math.floor(b[0] / 40), b[0] % 40];
    let v = 0;
    for (let i = 1; i < b.length; i++) { v = v * 128 + (b[i] & 0x7f); if (!(b[i] & 0x80)) { parts.push(v); v = 0; } }
    return parts.join('.');
  }
  function integer (node) { let v = 0; for (const x of content(node)) v = v * 256 + x; return v; }

  function pem (text) {
    const m = /-----BEGIN ([A-Z ]+)-----([\s\S]+?)-----END \1-----/.exec(text);
    if (!m) throw new KeyFileError('format', 'not a PEM key file');
    return { label: m[1], der: unb64(m[2].replace(/\s+/g, '')) };
  }

  async function decrypt (info, passphrase) {
    const [alg, data] = children(der(info));
    const [algOid, params] = children(alg);
    if (oid(algOid) !== OID.pbes2) throw new KeyFileError('format', 'unsupported key encryption (expected PBES2)');
    const [kdf, enc] = children(params);
    const [kdfOid, kdfParams] = children(kdf);
    if (oid(kdfOid) !== OID.pbkdf2) throw new KeyFileError('format', 'unsupported key derivation (expected PBKDF2)');
    const k = children(kdfParams);
    const salt = content(k[0]);
    const iterations = integer(k[1]);
    let hash = 'SHA-1';
    const prf = k.find((c) => c.tag === 0x30);
    if (prf) {
      const p = oid(children(prf)[0]);
      if (p === OID.hmacSha256) hash = 'SHA-256';
      else if (p !== OID.hmacSha1) throw new KeyFileError('format', 'unsupported PBKDF2 hash');
    }
    const [encOid, ivNode] = children(enc);
    const bits = { [OID.aes256cbc]: 256, [OID.aes128cbc]: 128 }[oid(encOid)];
    if (!bits) throw new KeyFileError('format', 'unsupported cipher (expected AES-CBC)');
    if (!passphrase) throw new KeyFileError('passphrase', 'this key file needs its passphrase');
    const base = await crypto.subtle.importKey('raw', utf8(passphrase), 'PBKDF2', false, ['deriveKey']);
    const aes = await crypto.subtle.deriveKey(
      { name: 'PBKDF2', salt, iterations, hash }, base, { name: 'AES-CBC', length: bits }, false, ['decrypt']);
    try {
      return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-CBC', iv: content(ivNode) }, aes, content(data)));
    } catch (e) {
      throw new KeyFileError('passphrase', 'wrong passphrase');
    }
  }

  /* A non-extractable Ed25519 signing key from the text of a key file. */
  async function importKeyFile (text, passphrase) {
    const { label, der: body } = pem(text);
    let plain;
    if (label === 'ENCRYPTED PRIVATE KEY') plain = await decrypt(body, passphrase);
    else if (label === 'PRIVATE KEY') plain = body;
    else throw new KeyFileError('format', 'not a private key file (' + label + ')');
    try {
      return await crypto.subtle.importKey('pkcs8', plain, { name: 'Ed25519' }, false, ['sign']);
    } catch (e) {
      throw new KeyFileError(label === 'PRIVATE KEY' ? 'format' : 'passphrase',
        label === 'PRIVATE KEY' ? 'not an Ed25519 key' : 'wrong passphrase');
    } finally {
      plain.fill(0);
      body.fill(0);
    }
  }

  // -- storage -------------------------------------------------------------------------
  function db () {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => {
        open.result.createObjectStore(KEYS);
        open.result.createObjectStore(QUEUE, { keyPath: 'id' });
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  async function run (store, mode, action) {
    const handle = await db();
    return new Promise((resolve, reject) => {
      const tx = handle.transaction(store, mode);
      const request = action(tx.objectStore(store));
      tx.oncomplete = () => { handle.close(); resolve(request && request.result); };
      tx.onerror = () => { handle.close(); reject(tx.error); };
    });
  }
  /* `slot` keeps the regulator console's key apart from the producer console's. */
  const saveKey = (key, slot) => run(KEYS, 'readwrite', (s) => s.put(key, slot || 'member'));
  const loadKey = (slot) => run(KEYS, 'readonly', (s) => s.get(slot || 'member'));
  const forgetKey = (slot) => run(KEYS, 'readwrite', (s) => (slot ? s.delete(slot) : s.clear()));
  const queue = {
    add: (item) => run(QUEUE, 'readwrite', (s) => s.put(item)),
    all: () => run(QUEUE, 'readonly', (s) => s.getAll()),
    remove: (id) => run(QUEUE, 'readwrite', (s) => s.delete(id)),
    clear: () => run(QUEUE, 'readwrite', (s) => s.clear())
  };

  async function sign (key, bytes) {
    return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, bytes));
  }

  /* The sign-in answer to a challenge from `POST <console>/api/challenge`
     (api/console/sessions.py): the signature, base64, over prefix, chain, authority and
     challenge. Both consoles sign in this way. */
  async function answerChallenge (key, c) {
    return b64(await sign(key, utf8(`${c.prefix}${c.chain_id}\n${c.authority}\n${c.challenge}`)));
  }

  /* A ledger transaction (ledger/tx.py): the body, RFC 8785 canonical JSON after the
     domain tag "parktrace/v1/tx\n", signed as the SDK signs it. */
  async function signTx (key, { chainId, type, payload, signer, timestamp }) {
    const nonce = crypto.getRandomValues(new Uint8Array(16));
    const body = {
      chain_id: chainId,
      type,
      payload,
      signer,
      timestamp: timestamp || new Date().toISOString(),
      nonce: b64(nonce)
    };
    const bytes = utf8('parktrace/v1/tx\n' + window.canonicalize(body));
    const signature = await sign(key, bytes);
    return { envelope: { body, signature: { scheme: 'ed25519', value: b64(signature) } }, id: hex(await sha256(bytes)) };
  }

  /* Headers of an RFC 9421 request signature in the node's profile (sdk/signing.py). */
  async function signRequest (key, keyid, method, url, body) {
    const u = new URL(url, location.href);
    const digest = 'sha-256=:' + b64(await sha256(body || new Uint8Array())) + ':';
    const created = Math.floor(Date.now() / 1000);
    const nonce = b64(crypto.getRandomValues(new Uint8Array(16))).replace(/[+/=]/g, '');
    const covered = ['"@method"', '"@authority"', '"@path"', '"@query"', '"content-digest"'];
    const params = '(' + covered.join(' ') + ')' +
      `;created=${created};keyid="${keyid}";alg="ed25519";nonce="${nonce}"`;
    const lines = [
      `"@method": ${method.toUpperCase()}`,
      `"@authority": ${u.host.toLowerCase()}`,
      `"@path": ${u.pathname}`,
      `"@query": ${u.search || '?'}`,
      `"content-digest": ${digest}`,
      `"@signature-params": ${params}`
    ];
    const signature = await sign(key, utf8(lines.join('\n')));
    return { 'Content-Digest': digest, 'Signature-Input': 'pt=' + params, Signature: 'pt=:' + b64(signature) + ':' };
  }

  window.ptKeys = { importKeyFile, saveKey, loadKey, forgetKey, queue, sign, answerChallenge, signTx, signRequest, b64, utf8, sha256, hex, KeyFileError };
})();
