#!/usr/bin/env python3
"""Interop test of meshlens's tap event files with fastavro.

``tests/tap_fastavro.rs`` writes, into ``--dir``, tap events encoded by meshlens
(deflate codec): ``stream.avro`` (a header, then one block per message, as the tap stream
sends them), ``recording.avro`` (the same events appended to a file) and ``cut.avro`` (the
stream cut halfway through its last block, as a killed process leaves a recording), plus
``expected.json`` with a few fields of every event as fastavro should return them.

This script checks that fastavro, an independent implementation, reads every record of the
whole files with the values expected (enum symbols, unions, nested records and arrays,
``timestamp-micros`` as a UTC datetime), that the schema in their header is
``assets/schemas/tap-event.avsc``, and that the cut file yields exactly the records of its
complete blocks before fastavro reports the damage. The last line is ``N passed, M failed``.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

try:
    import fastavro
    from fastavro.schema import to_parsing_canonical_form
except ImportError as e:  # the Rust test turns this into an install hint
    print(f"No module named {e.name}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(2)

REPO = Path(__file__).resolve().parent.parent
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}")


def picked(record):
    """The fields expected.json lists, taken from a record as fastavro returns it."""
    http, tcp, decision = record["http"], record["tcp"], record["decision"]
    return {
        "stream": record["stream"],
        "kind": record["kind"],
        "time_us": record["time_us"],
        "proxy": record["proxy"],
        "direction": record["direction"],
        "source_identity": record["source"]["identity"],
        "destination_namespace": record["destination"]["namespace"],
        "tls_reason": record["tls"]["reason"],
        "http_status": http and http["status"],
        "http_path": http and http["path"],
        "tcp_bytes_in": tcp and tcp["bytes_in"],
        "tried": decision and [t["name"] for t in decision["tried"]],
        "avro_sides": [a["side"] for a in record["avro"]],
        "avro_fingerprints": [a["fingerprint"] for a in record["avro"]],
        "lost": record["lost"],
    }


def as_fastavro(expected):
    """expected.json's event with time_us as the datetime fastavro makes of timestamp-micros."""
    out = dict(expected)
    out["time_us"] = EPOCH + datetime.timedelta(microseconds=expected["time_us"])
    return out


def read_all(path):
    """Records fastavro reads before it stops, and the error it stopped with (or None)."""
    records = []
    with open(path, "rb") as f:
        try:
            reader = fastavro.reader(f)
            meta = (reader.codec, reader.writer_schema)
            for record in reader:
                records.append(record)
        except Exception as e:  # noqa: BLE001 - any error is what a cut file must give
            return meta, records, e
    return meta, records, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    checks = Checks()
    expected = json.loads((args.dir / "expected.json").read_text())
    events = [as_fastavro(e) for e in expected["events"]]
    asset = json.loads((REPO / "assets" / "schemas" / "tap-event.avsc").read_text())
    asset_pcf = to_parsing_canonical_form(fastavro.parse_schema(asset))

    for name in ["stream.avro", "recording.avro"]:
        (codec, schema), records, error = read_all(args.dir / name)
        checks.check(error is None, f"{name}: fastavro failed: {error!r}")
        checks.check(codec == "deflate", f"{name}: codec {codec}")
        checks.check(
            to_parsing_canonical_form(schema) == asset_pcf,
            f"{name}: header schema is not tap-event.avsc",
        )
        checks.check(
            len(records) == len(events), f"{name}: {len(records)} records, not {len(events)}"
        )
        for i, (record, want) in enumerate(zip(records, events)):
            got = picked(record)
            checks.check(got == want, f"{name} record {i}: {got} != {want}")

    (_, _), records, error = read_all(args.dir / "cut.avro")
    complete = expected["complete_in_cut"]
    checks.check(error is not None, "cut.avro: fastavro read a cut file without an error")
    checks.check(
        len(records) == complete,
        f"cut.avro: {len(records)} records before the cut, not {complete}",
    )
    for i, (record, want) in enumerate(zip(records, events)):
        got = picked(record)
        checks.check(got == want, f"cut.avro record {i}: {got} != {want}")

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed or checks.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
