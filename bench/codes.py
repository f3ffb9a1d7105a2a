"""Code issuance and QR rendering throughput, one core.

Issuance: a batch of COUNT mask codes — draw the key, derive every serial and its
Digital Link URI, sign the one `codes.issue` transaction and commit it in a certified
block on SQLite — as codes issued and recorded per second; then how fast a node checks
scanned serials against the ledger. Rendering: PNG QR codes through zxing-cpp (the bulk
path) next to the pure-Python `qrcode` package measured in the same run (the baseline),
their ratio, and a decode of samples from both to show the content is identical.

    .venv/bin/python bench/codes.py [--count 1000000] [--images 3000] [--baseline 150]

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from pathlib import Path

import common
import zxingcpp
from PIL import Image

from api.codes import render
from api.codes.service import CodesService, CodesSettings
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain
from traceability.codes.batch import TX_TYPE, new_batch
from traceability.codes.digital_link import build
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"


def issuance(count: int, checks: int) -> dict[str, object]:
    park = Consortium.sample(seed=b"bench-codes")
    resolver = ResolverKey.from_seed(b"bench-codes")
    link = build("6907890000346", "KN95-BENCH-1", attributes={"11": "261122", "17": "291121"})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        chain = DevChain(park.genesis, park.validator_keys, store)
        started = time.perf_counter()
        batch, key = new_batch(link, count, [resolver.public], HOST)
        serials = list(batch.serial_key(key).serials(0, count))
        uris = [batch.code(s).uri(HOST) for s in serials]
        derived = time.perf_counter()
        tx = park.sign_tx("ganzhou-mask-factory", TX_TYPE, batch.payload())
        block = chain.commit_block([tx])
        recorded = time.perf_counter()
        service = CodesService(CodesSettings(resolver_host=HOST, resolver_keys=(resolver,)))
        rng = random.Random(1)
        sample = [batch.code(serials[rng.randrange(count)]) for _ in range(checks)]
        check_started = time.perf_counter()
        genuine = sum(
            service.authenticate(store, chain.membership, code).genuine for code in sample
        )
        checked = time.perf_counter()
        store.close()
    total = recorded - started
    return {
        "codes": count,
        "uris_written": len(uris),
        "transactions": len(block.txs),
        "payload_bytes": len(tx.canonical()),
        "derive_seconds": round(derived - started, 3),
        "record_seconds": round(recorded - derived, 3),
        "codes_issued_and_recorded_per_second": round(count / total),
        "scan_checks": checks,
        "scan_checks_genuine": genuine,
        "scan_checks_per_second": round(checks / (checked - check_started)),
    }


def _rate(render_one, uris: list[str]) -> float:
    started = time.perf_counter()
    for uri in uris:
        render_one(uri)
    return len(uris) / (time.perf_counter() - started)


def _decodes(png: bytes) -> str | None:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return found[0].text if found else None


def rendering(images: int, baseline: int) -> dict[str, object]:
    link = build("6907890000346", "KN95-BENCH-1", attributes={"11": "261122", "17": "291121"})
    batch, key = new_batch(link, images, [ResolverKey.from_seed(b"b").public], HOST)
    uris = [batch.code(s).uri(HOST) for s in batch.serial_key(key).serials(0, images)]
    render.png(uris[0])  # warm up
    bulk = _rate(render.png, uris)
    svg = _rate(render.svg, uris[: images // 2])
    slow = _rate(render.baseline_png, uris[:baseline])
    sample = uris[:: max(1, images // 50)]
    identical = all(
        _decodes(render.png(u)) == u and _decodes(render.baseline_png(u)) == u for u in sample
    )
    return {
        "qr_version_modules": render.matrix(uris[0]).size,
        "error_correction": render.DEFAULT_EC,
        "png_images_per_second_zxing_cpp": round(bulk),
        "svg_images_per_second": round(svg),
        "png_images_per_second_baseline_qrcode": round(slow, 1),
        "ratio_vs_baseline": round(bulk / slow, 1),
        "decoded_samples": len(sample),
        "content_identical": identical,
    }


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--count", type=int, default=1_000_000, help="codes in the batch")
    p.add_argument("--checks", type=int, default=2000, help="scanned serials to check")
    p.add_argument("--images", type=int, default=3000, help="PNGs through zxing-cpp")
    p.add_argument("--baseline", type=int, default=150, help="PNGs through qrcode")
    args = p.parse_args()
    if args.quick:
        args.count, args.checks, args.images, args.baseline = 2000, 100, 100, 10
    issued = issuance(args.count, args.checks)
    rendered = rendering(args.images, args.baseline)
    result = {"issuance": issued, "rendering": rendered}
    figures = {
        "codes": args.count,
        "issued+recorded codes/s": issued["codes_issued_and_recorded_per_second"],
        "PNG/s zxing-cpp": rendered["png_images_per_second_zxing_cpp"],
        "PNG/s qrcode (baseline)": rendered["png_images_per_second_baseline_qrcode"],
        "ratio": rendered["ratio_vs_baseline"],
        "decoded identical": rendered["content_identical"],
    }
    common.emit(
        "codes",
        result,
        figures,
        args,
        title="Mask codes issued and recorded (one codes.issue transaction per batch, "
        "committed); QR PNGs per second on one core against pure-Python qrcode.",
    )


if __name__ == "__main__":
    main()
