#!/usr/bin/env python3
"""Interop test of meshlens recordings with fastavro.

``tests/recording_fastavro.rs`` writes, into ``--dir``, ``recording.avro`` (tap events
written by ``meshlens::tap::recording::Recorder``: the tap-event schema in the header,
zstandard blocks as the recorder flushed them), ``cut.avro`` (the same file cut inside its
last block, as a killed recorder leaves it) and ``expected.json`` (each event's stream,
time and path, the events per block, and how many events the cut file's complete blocks
hold).

This script checks that fastavro reads every event of the recording with the values
expected, block by block as they were flushed, that the header's schema is
``assets/schemas/tap-event.avsc``, and that from the cut file it reads exactly the events of
the complete blocks before reporting the damage. The last line is ``N passed, M failed``.
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


def micros(t):
    """fastavro's datetime for a timestamp-micros, back to Unix microseconds."""
    delta = t - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    checks = Checks()
    expected = json.loads((args.dir / "expected.json").read_text())
    asset = json.loads((REPO / "assets" / "schemas" / "tap-event.avsc").read_text())
    asset_pcf = to_parsing_canonical_form(fastavro.parse_schema(asset))

    with open(args.dir / "recording.avro", "rb") as f:
        reader = fastavro.reader(f)
        checks.check(reader.codec == "zstandard", f"codec {reader.codec}")
        checks.check(
            to_parsing_canonical_form(reader.writer_schema) == asset_pcf,
            "the header's schema is not tap-event.avsc",
        )
        records = list(reader)
    checks.check(
        [r["stream"] for r in records] == expected["streams"], "streams differ"
    )
    checks.check(
        [micros(r["time_us"]) for r in records] == expected["times"], "times differ"
    )
    checks.check(
        [r["http"]["path"] for r in records] == expected["paths"], "paths differ"
    )

    with open(args.dir / "recording.avro", "rb") as f:
        per_block = [block.num_records for block in fastavro.block_reader(f)]
    checks.check(
        per_block == expected["per_block"],
        f"blocks hold {per_block}, not {expected['per_block']}",
    )

    cut_records = []
    error = None
    with open(args.dir / "cut.avro", "rb") as f:
        try:
            for record in fastavro.reader(f):
                cut_records.append(record)
        except Exception as e:  # noqa: BLE001 - any error is what a cut file must give
            error = e
    checks.check(error is not None, "fastavro read the cut file without an error")
    complete = expected["complete_in_cut"]
    checks.check(
        len(cut_records) == complete,
        f"{len(cut_records)} records before the cut, not {complete}",
    )
    checks.check(
        [r["stream"] for r in cut_records] == expected["streams"][:complete],
        "the cut file's records differ",
    )

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed or checks.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
