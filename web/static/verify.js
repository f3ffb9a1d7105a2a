/* ParkTrace receipt verifier: checks, in the shopper's own browser, the receipts of a
 * product's journey against the consortium's genesis, the way traceability/receipts.py
 * does offline. WebCrypto only (SHA-256, Ed25519); nothing leaves the page.
 *
 * Checked for each receipt: its shape (exact fields), chain id and genesis hash; the
 * transaction's RFC 6962 inclusion proof in the block (tx_root) and in the whole-ledger
 * log (log_root, at the position the header implies); the header's hash; that the
 * header names the validator set of genesis (or of a validator change the receipt links);
 * and that a quorum (more than two thirds) of those validators signed a precommit for
 * that hash. Canonical bytes are RFC 8785 JSON after a domain prefix (ledger/codec.py).
 * Not checked here: the signer's X.509 certificate and transaction signature. */
(function () {
  "use strict";

  const PREFIX = "parktrace/v1/";
  const SET_VALIDATORS = "membership.set_validators";
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
    const validators = trust.sets.filter(([first]) => first <= header.height).pop()[1];
    if (header.validators_hash !== validators.hash) {
      throw fail(where + ".block.header", "block " + header.height + " names a validator set this receipt does not link to genesis");
    }
    const blockHash = await digest("block", header);
    const signatures = await checkCommit(entry.commit, validators, trust.chainId, header, blockHash, where + ".commit");
    return { tx, header, logIndex, blockHash, signatures, quorum: validators.quorum };
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
    const trust = { chainId: genesis.chain_id, sets: [[1, await validatorSet(genesis.validators)]] };
    let previous = -1;
    for (const [i, link] of receipt.links.entries()) {
      const where = "receipt.links[" + i + "]";
      const check = await checkEntry(link, trust, where);
      if (check.logIndex <= previous) throw fail(where, "links are not in ledger order");
      previous = check.logIndex;
      if (check.tx.body.type === SET_VALIDATORS) {
        const change = check.tx.body.payload.change;
        if (change.previous !== trust.sets[trust.sets.length - 1][1].hash) {
          throw fail(where, "validator change does not follow the set before it");
        }
        trust.sets.push([check.header.height + 1, await validatorSet(change.validators)]);
      }
    }
    const main = Object.fromEntries(ENTRY.map((k) => [k, receipt[k]]));
    const check = await checkEntry(main, trust, "receipt");
    if (check.logIndex <= previous) throw fail("receipt.links", "a link comes after the transaction it vouches for");
    return {
      txId: toHex(await sha256(domainBytes("tx", check.tx.body))),
      height: check.header.height, blockHash: check.blockHash,
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
        if (result.txId !== row.dataset.tx || String(result.height) !== row.dataset.height) {
          throw new ReceiptError("receipt is for another transaction");
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

  window.ParkTraceVerify = { canonical, verifyReceipt, ReceiptError };
  const box = document.getElementById("verify");
  if (!box) return;
  const button = box.querySelector("#verify-button");
  if (!window.crypto || !crypto.subtle) {
    box.querySelector("#verify-result").textContent = JSON.parse(box.dataset.msg).no_webcrypto;
    return;
  }
  button.hidden = false;
  button.addEventListener("click", () => {
    button.disabled = true;
    run(box).catch((e) => {
      box.querySelector("#verify-result").textContent = e.message;
    }).finally(() => {
      button.disabled = false;
    });
  });
})();
