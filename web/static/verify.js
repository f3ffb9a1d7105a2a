/* ParkTrace receipt verifier: checks, in the shopper's own browser, the receipts of a
 * product's journey against the consortium's genesis, the way traceability/receipts.py
 * does offline. WebCrypto only (SHA-256, Ed25519); nothing leaves the page.
 *
 * Checked for each receipt: its shape (exact fields), chain id and genesis hash; the
 * transaction's RFC 6962 inclusion proof in the block (tx_root) and in the whole-ledger
 * log (log_root, at the position the header implies); the header's hash; that the
 * header names the validator set of genesis (or of a validator change the receipt links);
 * that a quorum (more than two thirds) of those validators signed a precommit for that
 * hash; and that the transaction's signature verifies with the Ed25519 key of the
 * signer's certificate in genesis (or in a membership change the receipt links), not
 * revoked before the block. Canonical bytes are RFC 8785 JSON after a domain prefix
 * (ledger/codec.py). Not checked here: that the certificate was issued by the
 * consortium's CA and valid at the block's time, and the write policy for its roles. */
(function () {
  "use strict";

  const PREFIX = "parktrace/v1/";
  const SET_VALIDATORS = "membership.set_validators";
  const ADD_ORG = "membership.add_org";
  const ROTATE_KEY = "membership.rotate_key";
  const REVOKE = "membership.revoke";
  /** DER SubjectPublicKeyInfo of an Ed25519 key, up to the 32 key bytes (RFC 8410). */
  const ED25519_SPKI = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00);
  const ENTRY = ["transaction", "block", "log", "commit"];
  const RECEIPT = ["type", "version", "chain_id", "genesis_hash", ...ENTRY, "links"];
  const utf8 = new TextEncoder();

  class ReceiptError extends Error {}
  const fail = (where, message) => new ReceiptError(where + ": " + message);

  /** RFC 8785: sorted keys (UTF-16 order, JS's own), ECMAScript number and string forms. */
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value !== null && typeof value === "object") {
      const keys = Object.keys(value).sort();
      return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    }
    if (typeof value === "number" && !Number.isFinite(value)) throw new Error("not a JSON number");
    return JSON.stringify(value);
  }

  const domainBytes = (domain, obj) => utf8.encode(PREFIX + domain + "\n" + canonical(obj));

  async function sha256(...parts) {
    const size = parts.reduce((n, p) => n + p.length, 0);
    const all = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  }

  const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  function fromHex(text, where) {
    if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) throw fail(where, "expected 64 hex digits");
    return Uint8Array.from(text.match(/../g), (h) => parseInt(h, 16));
  }

  function fromBase64(text, where) {
    try {
      return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch (e) {
      throw fail(where, "not base64");
    }
  }

  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const digest = async (domain, obj) => toHex(await sha256(domainBytes(domain, obj)));

  function fields(data, keys, where) {
    if (data === null || typeof data !== "object" || Array.isArray(data)) throw fail(where, "expected an object");
    const have = Object.keys(data).sort().join(",");
    if (have !== [...keys].sort().join(",")) throw fail(where, "fields must be " + keys.join(", "));
    return data;
  }

  function index(value, where) {
    if (!Number.isSafeInteger(value) || value < 0) throw fail(where, "expected a non-negative integer");
    return value;
  }

  /** RFC 9162 section 2.1.3.2: the root an audit path leads to from leaf `at` of `size`. */
  async function rootFromInclusion(leaf, at, size, proof, where) {
    if (at >= size) throw fail(where, "leaf index beyond the tree");
    let fn = at;
    let sn = size - 1;
    let r = leaf;
    const node = Uint8Array.of(1);
    for (const p of proof) {
      if (sn === 0) throw fail(where, "proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(node, p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await sha256(node, r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw fail(where, "proof is too short");
    return r;
  }

  async function included(leaf, at, size, proofHex, rootHex, where, what) {
    if (!Array.isArray(proofHex)) throw fail(where, "expected a list of hashes");
    const proof = proofHex.map((h, i) => fromHex(h, where + "[" + i + "]"));
    const root = await rootFromInclusion(leaf, at, size, proof, where);
    if (!equal(root, fromHex(rootHex, where + " root"))) throw fail(where, what);
  }

  /** A validator set as ledger/validators.py hashes it, and its quorum. */
  async function validatorSet(entries) {
    const list = entries.map((v) => ({ id: v.id, org: v.org, public_key: v.public_key }));
    return { list, hash: await digest("validators", list), quorum: Math.floor((list.length * 2) / 3) + 1 };
  }

  async function verifyVote(member, vote, signature) {
    if (member.public_key.scheme !== "ed25519") throw new Error("unsupported key scheme " + member.public_key.scheme);
    const key = await crypto.subtle.importKey(
      "raw", fromBase64(member.public_key.key, "public key"), { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, domainBytes("vote", vote));
  }

  /** The DER bytes of a PEM certificate. */
  function pemToDer(pem, where) {
    const body = String(pem).replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
    return fromBase64(body, where);
  }

  /** The Ed25519 key a certificate holds (its SubjectPublicKeyInfo), or null. */
  function ed25519Key(der) {
    outer: for (let i = 0; i + ED25519_SPKI.length + 32 <= der.length; i++) {
      for (let j = 0; j < ED25519_SPKI.length; j++) if (der[i + j] !== ED25519_SPKI[j]) continue outer;
      const at = i + ED25519_SPKI.length;
      return der.slice(at, at + 32);
    }
    return null;
  }

  /** Register certificates as signers: fingerprint (SHA-256 of the DER) -> key, org. */
  async function addSigners(signers, pems, org, height, where) {
    for (const pem of pems || []) {
      const der = pemToDer(pem, where);
      const fp = toHex(await sha256(der));
      if (!signers.has(fp)) signers.set(fp, { org, key: ed25519Key(der), added: height, revoked: null });
    }
  }

  async function checkSigner(tx, header, trust, where) {
    const signer = trust.signers.get(tx.body.signer);
    if (!signer) throw fail(where + ".transaction", "signer is not in genesis and no link of this receipt registers it");
    if (header.height <= signer.added) throw fail(where, "signer was registered at height " + signer.added + ", after this block");
    if (signer.revoked !== null && header.height > signer.revoked) {
      throw fail(where, "signer was revoked at height " + signer.revoked + ", before this block");
    }
    const sig = fields(tx.signature, ["scheme", "value"], where + ".transaction.signature");
    if (sig.scheme !== "ed25519" || !signer.key) throw fail(where + ".transaction", "not an Ed25519 signature");
    const key = await crypto.subtle.importKey("raw", signer.key, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" }, key, fromBase64(sig.value, where + ".transaction.signature"), domainBytes("tx", tx.body));
    if (!ok) throw fail(where + ".transaction", "signature does not verify with the signer's key");
    return signer.org;
  }

  /** What a verified membership change means for what follows it in the receipt. */
  async function applyLink(check, trust, where) {
    const type = check.tx.body.type;
    const change = (check.tx.body.payload || {}).change || {};
    const height = check.header.height;
    if (type === SET_VALIDATORS) {
      if (change.previous !== trust.sets[trust.sets.length - 1][1].hash) {
        throw fail(where, "validator change does not follow the set before it");
      }
      trust.sets.push([height + 1, await validatorSet(change.validators)]);
    } else if (type === ADD_ORG) {
      const org = change.organization || {};
      await addSigners(trust.signers, org.certificates, org.id, height, where);
    } else if (type === ROTATE_KEY) {
      const old = trust.signers.get(change.certificate);
      await addSigners(trust.signers, [change.new_certificate], old ? old.org : check.signerOrg, height, where);
      if (old) old.revoked = height;
    } else if (type === REVOKE) {
      const old = trust.signers.get(change.certificate);
      if (old) old.revoked = height;
    } else {
      throw fail(where, type + " is not a membership change a receipt links");
    }
  }

  async function checkCommit(commit, validators, chainId, header, blockHash, where) {
    fields(commit, ["chain_id", "height", "round", "block_hash", "signatures"], where);
    if (commit.chain_id !== chainId || commit.height !== header.height || commit.block_hash !== blockHash) {
      throw fail(where, "commit certificate is for another block");
    }
    if (!Array.isArray(commit.signatures)) throw fail(where, "signatures: expected a list");
    const ids = commit.signatures.map((s) => fields(s, ["validator", "signature"], where + ".signatures[]").validator);
    const sorted = [...new Set(ids)].sort();
    if (ids.join("\n") !== sorted.join("\n")) throw fail(where, "repeats a validator or is not sorted");
    if (ids.length < validators.quorum) throw fail(where, ids.length + " signatures; a quorum is " + validators.quorum);
    for (const s of commit.signatures) {
      const member = validators.list.find((v) => v.id === s.validator);
      if (!member) throw fail(where, "vote from " + s.validator + ", which is not a validator");
      const vote = {
        chain_id: commit.chain_id, height: commit.height, round: commit.round,
        type: "precommit", block_hash: commit.block_hash, validator: s.validator,
      };
      if (!(await verifyVote(member, vote, fromBase64(s.signature, where)))) {
        throw fail(where, "signature of " + s.validator + " does not verify");
      }
    }
    return commit.signatures.length;
  }

  async function checkEntry(entry, trust, where) {
    fields(entry, ENTRY, where);
    const block = fields(entry.block, ["header", "tx_index", "tx_proof"], where + ".block");
    const log = fields(entry.log, ["index", "proof"], where + ".log");
    const header = block.header;
    const tx = fields(entry.transaction, ["body", "signature"], where + ".transaction");
    if (header === null || typeof header !== "object") throw fail(where + ".block.header", "expected an object");
    if (tx.body.chain_id !== trust.chainId || header.chain_id !== trust.chainId) {
      throw fail(where, "is not for chain " + trust.chainId);
    }
    const position = index(block.tx_index, where + ".block.tx_index");
    const logIndex = index(log.index, where + ".log.index");
    const leaf = await sha256(Uint8Array.of(0), utf8.encode(canonical(tx)));
    await included(leaf, position, header.tx_count, block.tx_proof, header.tx_root,
      where + ".block", "transaction is not in block " + header.height);
    if (logIndex !== header.log_size - header.tx_count + position) {
      throw fail(where + ".log.index", "does not match the transaction's place in its block");
    }
    await included(leaf, logIndex, header.log_size, log.proof, header.log_root,
      where + ".log", "transaction is not in the ledger log");
    const signerOrg = await checkSigner(tx, header, trust, where);
    const validators = trust.sets.filter(([first]) => first <= header.height).pop()[1];
    if (header.validators_hash !== validators.hash) {
      throw fail(where + ".block.header", "block " + header.height + " names a validator set this receipt does not link to genesis");
    }
    const blockHash = await digest("block", header);
    const signatures = await checkCommit(entry.commit, validators, trust.chainId, header, blockHash, where + ".commit");
    return { tx, header, logIndex, blockHash, signatures, quorum: validators.quorum, signerOrg };
  }

  /** Check one receipt against a genesis document; throws a ReceiptError saying why not. */
  async function verifyReceipt(receipt, genesis) {
    fields(receipt, RECEIPT, "receipt");
    if (receipt.type !== "parktrace.receipt" || receipt.version !== 1) throw fail("receipt", "not a parktrace.receipt version 1");
    if (receipt.chain_id !== genesis.chain_id) throw fail("receipt.chain_id", "receipt is for chain " + receipt.chain_id);
    if (receipt.genesis_hash !== (await digest("genesis", genesis))) {
      throw fail("receipt.genesis_hash", "receipt names another genesis than this node's");
    }
    if (!Array.isArray(receipt.links)) throw fail("receipt.links", "expected a list");
    const trust = { chainId: genesis.chain_id, sets: [[1, await validatorSet(genesis.validators)]], signers: new Map() };
    for (const org of genesis.organizations) await addSigners(trust.signers, org.certificates, org.id, 0, "genesis");
    for (const v of genesis.validators) await addSigners(trust.signers, [v.certificate], v.org, 0, "genesis");
    let previous = -1;
    for (const [i, link] of receipt.links.entries()) {
      const where = "receipt.links[" + i + "]";
      const check = await checkEntry(link, trust, where);
      if (check.logIndex <= previous) throw fail(where, "links are not in ledger order");
      previous = check.logIndex;
      await applyLink(check, trust, where);
    }
    const main = Object.fromEntries(ENTRY.map((k) => [k, receipt[k]]));
    const check = await checkEntry(main, trust, "receipt");
    if (check.logIndex <= previous) throw fail("receipt.links", "a link comes after the transaction it vouches for");
    return {
      txId: toHex(await sha256(domainBytes("tx", check.tx.body))),
      height: check.header.height, blockHash: check.blockHash, org: check.signerOrg,
      signatures: check.signatures, quorum: check.quorum,
    };
  }

  function say(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : ""));
  }

  async function run(box) {
    const msg = JSON.parse(box.dataset.msg);
    const out = box.querySelector("#verify-result");
    const rows = Array.from(document.querySelectorAll(".proof-row"));
    out.textContent = msg.running;
    const genesis = await (await fetch(box.dataset.genesis)).json();
    let failed = 0;
    for (const row of rows) {
      const mark = row.querySelector(".check");
      try {
        const answer = await fetch("/v1/transactions/" + row.dataset.tx + "/receipt");
        if (!answer.ok) throw new ReceiptError("HTTP " + answer.status);
        const result = await verifyReceipt(await answer.json(), genesis);
        if (result.txId !== row.dataset.tx || String(result.height) !== row.dataset.height ||
            result.org !== row.dataset.org) {
          throw new ReceiptError("receipt is for another transaction or signer");
        }
        mark.textContent = msg.row_ok;
        mark.className = "check ok";
      } catch (e) {
        failed += 1;
        mark.textContent = say(msg.row_failed, { reason: e.message });
        mark.className = "check bad";
      }
    }
    out.innerHTML = "";
    const head = document.createElement("p");
    head.className = failed ? "bad" : "ok";
    head.id = "verify-verdict";
    head.textContent = failed ? say(msg.failed, { n: failed }) : say(msg.ok, { n: rows.length });
    out.append(head);
    for (const text of [msg.checked, msg.not_checked]) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = text;
      out.append(p);
    }
  }

  /** Whether this browser verifies Ed25519 (WebCrypto has it only in newer engines). */
  async function supportsEd25519() {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"]);
      return true;
    } catch (e) {
      return e.name !== "NotSupportedError";  // a bad key is still a supported algorithm
    }
  }

  window.ParkTraceVerify = { canonical, verifyReceipt, ReceiptError };
  const box = document.getElementById("verify");
  if (!box) return;
  const button = box.querySelector("#verify-button");
  const result = box.querySelector("#verify-result");
  const msg = JSON.parse(box.dataset.msg);
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    result.textContent = msg.insecure;  // WebCrypto exists only on https (and localhost)
    return;
  }
  supportsEd25519().then((supported) => {
    if (!supported) {
      result.textContent = msg.no_webcrypto;
      return;
    }
    button.hidden = false;
    button.addEventListener("click", () => {
      button.disabled = true;
      run(box).catch((e) => {
        result.textContent = e.message;
      }).finally(() => {
        button.disabled = false;
      });
    });
  });
})();
