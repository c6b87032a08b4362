#!/usr/bin/env python3
"""Differential test of meshlens's Avro decoder against fastavro.

What it checks
--------------
For a deterministic stream of random Avro schemas (``--seed``; schema K of a seed is always
the same) the script

* generates schemas with nested records (and ``error``), unions (including unions of
  several named types), arrays, maps, enums (some with an enum ``default``, some with more
  than 64 symbols), fixed (size 0 included), recursive records (``["null", <itself>]``,
  arrays/maps of itself; data depth bounded), field and type aliases, namespaces
  (inherited, explicit, explicit ``""``, dotted names, the same short name in two
  namespaces, short and full references), ``doc``/``order``/custom attributes, field
  defaults, and every Avro 1.12 logical type: decimal on bytes and on fixed, big-decimal,
  uuid on string and on fixed(16), date, time-millis, time-micros,
  timestamp-millis/micros/nanos, local-timestamp-millis/micros/nanos, duration (fixed 12),
  plus logical types that are invalid on their type (read as the underlying type);
* generates values (edge-case ints and longs, floats incl. NaN, ±Infinity, -0.0 and
  subnormals, arbitrary bytes, Unicode strings with control characters, U+2028 and astral
  code points, map keys incl. "", 70-item arrays) and has **fastavro** (an independent
  implementation, PyPI) encode them; datetime/date/time/Decimal/UUID values go through
  fastavro's logical-type writers. In "wild" schemas some logical values are out of the
  range a logical view can show (they must fall back to the underlying number);
* reads every datum back with fastavro, once with the logical types stripped and
  ``return_named_type=True`` (so the union branch is known) and once with them (so
  fastavro's Python values are known), and computes in Python the Avro JSON and the
  friendly JSON these values imply (fastavro's own Avro-JSON writer cannot do map key ""
  or recursive schemas);
* runs ``meshlens avro decode`` and compares its output structurally: key order of
  records and maps, union labels (full names), bytes/fixed as code points 0-255, and
  floats (an Avro ``float`` must round-trip to the same float32, a ``double`` to the same
  float64, NaN/Infinity as strings, and no more digits than the shortest round-trip text).

The framings, per schema:

- object container files written by fastavro in all six codecs (null, deflate, snappy,
  zstandard, bzip2, xz) with a small ``sync_interval`` (several blocks): every record as
  avro-json, and the null-codec file also in the friendly view (so every record's friendly
  view is checked); sometimes with ``--pretty`` (records stay one per line); plus an
  empty file with user metadata (no output);
- single-object encoding (``C3 01`` + CRC-64-AVRO of fastavro's canonical form),
  Confluent v0 and v1, Apicurio (4- and 8-byte ids), AWS Glue, references in headers
  (``__value_schema_id`` v0/v1, ``__key_schema_id`` with ``--key``,
  ``apicurio.value.globalId``/``contentId``, ``x-avro-schema-id``, ``x-avro-fingerprint``
  as hex and as signed decimal), a bare datum with ``--framing bare`` and in auto mode
  (also datums that start with 00/01/03; those that would also parse as framed are
  forced bare): spread over the records, each with ``--schema`` and ``--describe`` (the
  detected framing is checked), some through standard input;
- a datum re-encoded here with arrays and maps split into several blocks, some with a
  negative count and a byte size (fastavro always writes one block), which fastavro
  decodes for the expected value;
- ``meshlens schema fingerprint`` against fastavro's CRC-64-AVRO;
- reader != writer (``--reader``, bare and container), compared with
  ``fastavro.schemaless_reader(fo, writer, reader)``: for some record schemas a derived
  reader (record renamed with an alias, nested type renamed with a full or short alias,
  field renamed with an alias, fields dropped/added with defaults/reordered,
  int->long/float/double, long->float/double, float->double, string<->bytes, also as array
  items/map values, T -> ["null", T], enum symbols reordered/extended or dropped with an
  enum default), also on the re-blocked datum (skipping blocks by size); and hand-written
  cases, including ones fastavro rejects, where meshlens must exit 1 with one ``error:``.

Whatever the seed, a fixed list of edge cases (schemas 8xx: big-decimal with negative
scales, decimal on fixed, out-of-range times/dates/timestamps, float and double extremes,
awkward map keys and strings, durations, a union of two enums with the same short name)
goes through all the framings above too.

Known fastavro 1.13 behaviours the generator avoids: it does not fall back to the null
namespace when resolving a short name; it resolves a writer union branch to the first
*promotable* reader branch (``bytes`` -> ``string`` in ``["string", "bytes"]``), so derived
readers with such unions are not compared; it rejects a "NaN" double default; and
``to_parsing_canonical_form`` of an already parsed non-record schema loses explicit
``""`` namespaces (so fastavro always gets the schema JSON).

Running it
----------
    cargo build                      # the script tests an existing binary
    python3 tests/avro_differential.py [--seed N] [--schemas N] [--records N]
                                       [--bin PATH] [--only K] [--keep DIR] [-v]

Needs Python 3 with ``fastavro``, ``cramjam`` (snappy) and ``backports.zstd`` or
``zstandard`` (zstandard). ``--bin`` defaults to ``target/debug/meshlens`` under the
repository root (this file's parent's parent). ``--only K`` reruns schema K of the seed
(what a failure report names; 9xx are the hand-written reader cases); ``--keep DIR``
keeps the generated files (schemas, payloads) for reproducing a failure; ``-v`` prints
what the run covered. A failure report gives the seed, schema, framing, command, payload
in hex, expected and actual JSON and the first difference (the first 10 in detail). The
last line is ``N passed, M failed``; the exit status is non-zero when a check failed or
when no check ran.
"""

from __future__ import annotations

import argparse
import collections
import copy
import datetime as dt
import decimal
import io
import json
import math
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

try:
    import fastavro
    from fastavro import parse_schema, schemaless_reader, schemaless_writer
    from fastavro.schema import fingerprint as fa_fingerprint
    from fastavro.schema import to_parsing_canonical_form
except ImportError:  # pragma: no cover - environment problem, reported plainly
    print("error: this test needs fastavro (pip install fastavro cramjam backports.zstd)")
    print("0 passed, 1 failed")
    sys.exit(2)

REPO = Path(__file__).resolve().parent.parent
CODECS = ["null", "deflate", "snappy", "zstandard", "bzip2", "xz"]
PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
NAMED = ("record", "error", "enum", "fixed")
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
DAYS_SHIFT = dt.date(1970, 1, 1).toordinal()
MISSING = object()  # "fastavro could not give a logical value for this datum"
STATS = collections.Counter()  # what the run exercised (printed with -v)

# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------


def f32(x: float) -> float:
    """`x` rounded to the nearest float32 (to infinity beyond its range)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def max_decimal_digits(size: int) -> int:
    return int(math.floor(math.log10(2) * (8 * size - 1))) if size > 0 else 0


def signed_be(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)


def decimal_text(unscaled: int, scale: int) -> str:
    sign = "-" if unscaled < 0 else ""
    digits = str(abs(unscaled))
    if scale <= 0:  # big-decimal may carry a negative scale (Java's 1E+3 has scale -3)
        return str(unscaled * 10**-scale)
    digits = digits.rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def trunc(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


class Obj:
    """A JSON object as its ordered list of (key, value) pairs."""

    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = list(pairs)


class Num:
    """A JSON number token that had a fraction or exponent (kept as text)."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class Flt:
    """An expected Avro float (width 32) or double (width 64)."""

    __slots__ = ("v", "width")

    def __init__(self, v, width):
        self.v = float(v)
        self.width = width


def json_lines(out: str):
    """One document per line ("\n" only: str.splitlines would also split at U+2028)."""
    lines = out.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def parse_actual(text: str):
    return json.loads(text, object_pairs_hook=Obj, parse_float=Num)


def to_plain(x):
    """Expected/actual structure back to plain JSON-able data (for reports)."""
    if isinstance(x, Obj):
        d = {}
        for k, v in x.pairs:
            d[k if k not in d else k + " (dup)"] = to_plain(v)
        return d
    if isinstance(x, list):
        return [to_plain(v) for v in x]
    if isinstance(x, Flt):
        if math.isnan(x.v):
            return "NaN"
        if math.isinf(x.v):
            return "Infinity" if x.v > 0 else "-Infinity"
        return x.v
    if isinstance(x, Num):
        return float(x.text)
    return x


def dumps(x) -> str:
    return json.dumps(to_plain(x), ensure_ascii=False, separators=(",", ":"))


def sig_digits(text: str) -> int:
    mant = text.lower().split("e")[0].lstrip("+-").replace(".", "")
    mant = mant.strip("0")
    return max(1, len(mant))


def nearest_digits(x: float, width: int) -> int:
    """Digits of the shortest 'nearest p-digit' decimal that round-trips (an upper bound
    on the shortest round-trip text)."""
    if x == 0:
        return 1
    for p in range(1, 18):
        s = f"{x:.{p - 1}e}"
        y = float(s)
        if (f32(y) if width == 32 else y) == x:
            return p
    return 17


def cmp_float(exp: Flt, act, path):
    v = exp.v
    if math.isnan(v) or math.isinf(v):
        want = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        if isinstance(act, str) and act == want:
            return None
        return f"{path}: expected {want!r}, got {dumps(act)}"
    if isinstance(act, bool) or not isinstance(act, (Num, int)):
        return f"{path}: expected a number ({v!r}), got {dumps(act)}"
    text = act.text if isinstance(act, Num) else str(act)
    got = float(text)
    if exp.width == 32:
        got = f32(got)
    same = struct.pack("<d", got) == struct.pack("<d", v)
    if not same:
        return f"{path}: expected float{exp.width} {v!r}, got {text}"
    limit = nearest_digits(v, exp.width)
    if sig_digits(text) > limit:
        return (
            f"{path}: {text} is not the shortest text of float{exp.width} {v!r} "
            f"({limit} significant digits suffice)"
        )
    return None


def compare(exp, act, path="$"):
    """None when equal, else a one-line description of the first difference."""
    if isinstance(exp, Flt):
        return cmp_float(exp, act, path)
    if exp is None:
        return None if act is None else f"{path}: expected null, got {trunc(dumps(act), 200)}"
    if isinstance(exp, bool):
        if isinstance(act, bool) and act == exp:
            return None
        return f"{path}: expected {dumps(exp)}, got {trunc(dumps(act), 200)}"
    if isinstance(exp, int):
        if type(act) is int and act == exp:
            return None
        return f"{path}: expected {exp}, got {trunc(dumps(act), 200)}"
    if isinstance(exp, str):
        if isinstance(act, str) and act == exp:
            return None
        return f"{path}: expected {json.dumps(exp)}, got {trunc(dumps(act), 200)}"
    if isinstance(exp, list):
        if not isinstance(act, list):
            return f"{path}: expected an array, got {trunc(dumps(act), 200)}"
        if len(act) != len(exp):
            return f"{path}: expected {len(exp)} items, got {len(act)}"
        for i, (e, a) in enumerate(zip(exp, act)):
            d = compare(e, a, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(exp, Obj):
        if not isinstance(act, Obj):
            return f"{path}: expected an object, got {trunc(dumps(act), 200)}"
        ek = [k for k, _ in exp.pairs]
        ak = [k for k, _ in act.pairs]
        if ek != ak:
            return f"{path}: expected keys {ek}, got {ak}"
        for (k, e), (_, a) in zip(exp.pairs, act.pairs):
            d = compare(e, a, f"{path}.{k}" if k.isidentifier() else f"{path}[{json.dumps(k)}]")
            if d:
                return d
        return None
    return f"{path}: harness cannot compare {exp!r}"


# ----------------------------------------------------------------------------------------
# Schema generation
# ----------------------------------------------------------------------------------------

WORDS = ["alpha", "beta", "id", "name", "value", "kind", "ts", "item", "node", "data", "meta", "x"]
NAMESPACES = ["com.example", "org.mesh.v1", "a.b", "x", "io.meshlens.test_ns"]
SYMBOLS = ["A", "B", "C", "RED", "GREEN", "BLUE", "_x", "z9", "NONE", "Sym_1", "UNKNOWN"]
DOCS = ["a doc", "doc with \"quotes\" and \\ backslash", "ünïcödé ✓ doc", "multi\nline\tdoc", ""]


def full_namespace(full: str):
    return full.rsplit(".", 1)[0] if "." in full else None


class SchemaGen:
    """Builds one random schema (as JSON data) and remembers its named types."""

    def __init__(self, rng: random.Random, wild: bool):
        self.rng = rng
        self.wild = wild
        self.n = 0
        self.done = {}  # full name -> kind, fully defined (referenceable)
        self.all_names = set()
        self.max_depth = rng.choice([2, 3, 3, 4])
        self.features = set()

    def fresh(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}_{self.rng.choice(WORDS)}"

    def maybe_doc(self, obj, p=0.3):
        if self.rng.random() < p:
            obj["doc"] = self.rng.choice(DOCS)

    def maybe_props(self, obj, p=0.15):
        if self.rng.random() < p:
            obj[self.rng.choice(["x-owner", "connect.name", "java-class"])] = self.rng.choice(
                ["team-a", {"nested": [1, 2.5, None]}, 7]
            )

    def place_name(self, obj, prefix, ens):
        """Sets name/namespace on a new named type; returns its full name."""
        r = self.rng
        name = self.fresh(prefix)
        how = r.random()
        if self.all_names and r.random() < 0.12:
            # The short name of another type, in another namespace.
            name = r.choice(sorted(self.all_names)).rsplit(".", 1)[-1]
            ns = r.choice(NAMESPACES)
            if f"{ns}.{name}" in self.all_names:
                name = self.fresh(prefix)
            how = 0.5 if r.random() < 0.5 else 0.9
            self.features.add("same short name in two namespaces")
        if how < 0.45:
            obj["name"] = name
            full = f"{ens}.{name}" if ens else name
        elif how < 0.7:
            ns = ns if how == 0.5 else r.choice(NAMESPACES)
            obj["name"], obj["namespace"] = name, ns
            full = f"{ns}.{name}"
            self.features.add("explicit namespace")
        elif how < 0.82:
            obj["name"], obj["namespace"] = name, ""
            full = name
            self.features.add("empty namespace")
        else:
            ns = ns if how == 0.9 else r.choice(NAMESPACES)
            full = f"{ns}.{name}"
            obj["name"] = full
            if r.random() < 0.3:
                obj["namespace"] = "ignored.because.dotted"
            self.features.add("dotted name")
        if r.random() < 0.3:
            obj["aliases"] = [f"Old{name}", f"legacy.ns.{name}Alias"]
            self.features.add("type aliases")
        self.maybe_doc(obj)
        self.maybe_props(obj)
        if full in self.all_names:  # (only possible for a reused short name)
            obj.pop("namespace", None)
            full = obj["name"] = f"fresh{self.n}.{self.fresh(prefix)}"
        self.all_names.add(full)
        return full

    def ref_text(self, full, ens):
        """How to refer to `full` from inside namespace `ens` (None if fastavro could not
        resolve it: it does not fall back to the null namespace)."""
        ns = full_namespace(full)
        if ns is None:
            return full if not ens else None
        if ns == ens and self.rng.random() < 0.5:
            self.features.add("short reference")
            return full.rsplit(".", 1)[1]
        return full

    def referenceable(self, ens, kinds=("record", "enum", "fixed")):
        out = []
        for full, kind in self.done.items():
            if kind in kinds:
                t = self.ref_text(full, ens)
                if t is not None:
                    out.append((full, t))
        return out

    # -- types ---------------------------------------------------------------------------

    def enum(self, ens):
        r = self.rng
        obj = {"type": "enum"}
        full = self.place_name(obj, "E", ens)
        if r.random() < 0.08:
            obj["symbols"] = r.sample([f"S{i}" for i in range(100)], r.randint(65, 100))
            self.features.add("enum with more than 64 symbols")
        else:
            obj["symbols"] = r.sample(SYMBOLS, r.randint(1, 6))
        if r.random() < 0.35:
            obj["default"] = r.choice(obj["symbols"])
            self.features.add("enum default")
        self.done[full] = "enum"
        self.features.add("enum")
        return obj, full

    def fixed(self, ens, size=None, prefix="F"):
        r = self.rng
        obj = {"type": "fixed"}
        full = self.place_name(obj, prefix, ens)
        obj["size"] = size if size is not None else r.choice([0, 1, 2, 4, 7, 16, 33])
        self.done[full] = "fixed"
        self.features.add("fixed")
        return obj, full

    def logical(self, ens):
        r = self.rng
        kind = r.choice(
            [
                "decimal-bytes", "decimal-fixed", "big-decimal", "uuid-string", "uuid-fixed",
                "date", "time-millis", "time-micros", "timestamp-millis", "timestamp-micros",
                "timestamp-nanos", "local-timestamp-millis", "local-timestamp-micros",
                "local-timestamp-nanos", "duration", "invalid",
            ]
        )
        self.features.add("logical " + kind)
        if kind == "decimal-bytes":
            p = r.choice([1, 2, 4, 9, 18, 28, 38, 45])
            t = {"type": "bytes", "logicalType": "decimal", "precision": p}
            s = r.randint(0, p)
            if s or r.random() < 0.5:
                t["scale"] = s
            return t
        if kind == "decimal-fixed":
            size = r.choice([1, 2, 3, 5, 8, 12, 16, 20])
            t, _ = self.fixed(ens, size, "Dec")
            p = r.randint(1, max_decimal_digits(size))
            t.update(logicalType="decimal", precision=p, scale=r.randint(0, p))
            return t
        if kind == "big-decimal":
            return {"type": "bytes", "logicalType": "big-decimal"}
        if kind == "uuid-string":
            return {"type": "string", "logicalType": "uuid"}
        if kind == "uuid-fixed":
            t, _ = self.fixed(ens, 16, "Uuid")
            t["logicalType"] = "uuid"
            return t
        if kind == "duration":
            t, _ = self.fixed(ens, 12, "Dur")
            t["logicalType"] = "duration"
            return t
        if kind in ("date", "time-millis"):
            return {"type": "int", "logicalType": kind}
        if kind == "invalid":
            return r.choice(
                [
                    {"type": "long", "logicalType": "date"},
                    {"type": "int", "logicalType": "timestamp-millis"},
                    {"type": "string", "logicalType": "made-up-type"},
                    {"type": "int", "logicalType": "time-micros"},
                ]
            )
        return {"type": "long", "logicalType": kind}

    def primitive(self, allow_null=False):
        choices = ["boolean", "int", "long", "float", "double", "bytes", "string"]
        if allow_null:
            choices.append("null")
        p = self.rng.choice(choices)
        if self.rng.random() < 0.15:
            return {"type": p}
        return p

    def record(self, ens, depth):
        r = self.rng
        obj = {"type": r.choice(["record"] * 9 + ["error"])}
        full = self.place_name(obj, "R", ens)
        ins = full_namespace(full)
        self_ref = self.ref_text(full, ins) or full
        fields = []
        nfields = r.randint(1, 5)
        recursive_at = r.randrange(nfields + 1) if r.random() < 0.4 else -1
        for i in range(nfields + (1 if recursive_at >= 0 else 0)):
            f = {"name": f"f{i}_{r.choice(WORDS)}"}
            if i == recursive_at:
                self.features.add("recursion")
                f["type"] = r.choice(
                    [
                        ["null", self_ref],
                        [self_ref, "null"],
                        {"type": "array", "items": self_ref},
                        {"type": "map", "values": self_ref},
                        ["null", {"type": "array", "items": self_ref}],
                    ]
                )
                if isinstance(f["type"], list) and f["type"][0] == "null" and r.random() < 0.5:
                    f["default"] = None
            else:
                f["type"] = self.type(ins, depth + 1)
                self.maybe_default(f)
            if r.random() < 0.2:
                f["aliases"] = [f"old_{f['name']}"]
                self.features.add("field aliases")
            if r.random() < 0.1:
                f["order"] = r.choice(["ascending", "descending", "ignore"])
            self.maybe_doc(f, 0.2)
            self.maybe_props(f, 0.1)
            fields.append(f)
        obj["fields"] = fields
        self.done[full] = "record"
        self.features.add("record")
        return obj

    def maybe_default(self, f):
        """Adds a valid default for simple field types (parsed, not used, by a lone writer)."""
        r = self.rng
        if r.random() > 0.25:
            return
        t = f["type"]
        if isinstance(t, dict) and t.get("type") in PRIMITIVES and "logicalType" not in t:
            t = t["type"]
        d = {
            "null": None, "boolean": True, "int": -7, "long": 1 << 40, "float": 1.5,
            "double": 2.5, "bytes": "\u00ff\u0000a", "string": "dflt ü",
        }
        if isinstance(t, str) and t in d:
            f["default"] = d[t]
        elif isinstance(t, list) and t and t[0] == "null":
            f["default"] = None
        elif isinstance(t, dict) and t.get("type") == "enum":
            f["default"] = t["symbols"][-1]
        elif isinstance(t, dict) and t.get("type") == "array":
            f["default"] = []
        else:
            return
        self.features.add("field default")

    def union(self, ens, depth):
        r = self.rng
        branches, keys = [], set()

        def add(key, t):
            if key in keys or (key == "int" and "long" in keys) or (key == "long" and "int" in keys):
                return
            if (key == "float" and "double" in keys) or (key == "double" and "float" in keys):
                return
            keys.add(key)
            branches.append(t)

        want = r.randint(2, 4)
        with_null = r.random() < 0.7
        if with_null:
            keys.add("null")
        tries = 0
        while len(branches) < want and tries < 30:
            tries += 1
            c = r.random()
            if c < 0.3:
                p = self.primitive()
                add(p if isinstance(p, str) else p["type"], p)
            elif c < 0.45:
                t = self.logical(ens)
                if "name" in t:
                    add(full_of(t, ens), t)
                else:
                    add(t["type"], t)
            elif c < 0.55 and depth < self.max_depth and "array" not in keys:
                # (checked first: a rejected branch must not define named types)
                add("array", {"type": "array", "items": self.type(ens, depth + 1, allow_union=False)})
            elif c < 0.62 and depth < self.max_depth and "map" not in keys:
                add("map", {"type": "map", "values": self.type(ens, depth + 1)})
            elif c < 0.72 and depth < self.max_depth:
                t = self.record(ens, depth)
                add(full_of(t, ens), t)
            elif c < 0.8:
                t, full = self.enum(ens)
                add(full, t)
            elif c < 0.86:
                t, full = self.fixed(ens)
                add(full, t)
            else:
                refs = self.referenceable(ens)
                if refs:
                    full, text = r.choice(refs)
                    add(full, text)
                    self.features.add("named reference in union")
        if len(branches) + with_null < 2:
            add("string", "string")
        if with_null or len(branches) < 2:
            # Branches stay in generation order (a reference must follow its definition).
            branches.insert(r.randint(0, len(branches)), "null")
        self.features.add("union")
        if sum(1 for b in branches if not (isinstance(b, str) and b in PRIMITIVES)) >= 2:
            self.features.add("union of named types")
        return branches

    def type(self, ens, depth, allow_union=True):
        r = self.rng
        c = r.random()
        if depth >= self.max_depth:
            c = c * 0.55
        if c < 0.22:
            return self.primitive()
        if c < 0.40:
            return self.logical(ens)
        if c < 0.46:
            return self.enum(ens)[0]
        if c < 0.50:
            return self.fixed(ens)[0]
        if c < 0.55:
            refs = self.referenceable(ens)
            if refs:
                self.features.add("named reference")
                return r.choice(refs)[1]
            return self.primitive()
        if c < 0.66:
            self.features.add("array")
            return {"type": "array", "items": self.type(ens, depth + 1)}
        if c < 0.75:
            self.features.add("map")
            return {"type": "map", "values": self.type(ens, depth + 1)}
        if c < 0.88 and allow_union:
            return self.union(ens, depth)
        return self.record(ens, depth)

    def root(self):
        r = self.rng
        c = r.random()
        if c < 0.8:
            return self.record(None, 0)
        if c < 0.88:
            return self.union(None, 0)
        if c < 0.92:
            return {"type": "array", "items": self.type(None, 1)}
        if c < 0.95:
            return {"type": "map", "values": self.type(None, 1)}
        return self.type(None, self.max_depth)


def full_of(t, ens):
    name = t["name"]
    if "." in name:
        return name
    ns = t.get("namespace", ens)
    return f"{ns}.{name}" if ns else name


def strip_logical(t):
    """A copy of schema `t` without logicalType attributes (names, defaults untouched)."""
    if isinstance(t, list):
        return [strip_logical(b) for b in t]
    if isinstance(t, str):
        return t
    t = dict(t)
    t.pop("logicalType", None)
    kind = t.get("type")
    if kind in ("record", "error"):
        t["fields"] = [dict(f, type=strip_logical(f["type"])) for f in t["fields"]]
    elif kind == "array":
        t["items"] = strip_logical(t["items"])
    elif kind == "map":
        t["values"] = strip_logical(t["values"])
    elif isinstance(kind, (dict, list)):
        t["type"] = strip_logical(kind)
    return t


# ----------------------------------------------------------------------------------------
# A view of a schema as fastavro parsed it (full names everywhere)
# ----------------------------------------------------------------------------------------


class Parsed:
    def __init__(self, raw):
        self.raw = raw
        self.p = parse_schema(copy.deepcopy(raw))
        self.named = {}
        self._collect(self.p)

    def _collect(self, s):
        if isinstance(s, list):
            for b in s:
                self._collect(b)
        elif isinstance(s, dict):
            t = s.get("type")
            if t in NAMED:
                if s["name"] in self.named:
                    return
                self.named[s["name"]] = s
                for f in s.get("fields", []):
                    self._collect(f["type"])
            elif t == "array":
                self._collect(s["items"])
            elif t == "map":
                self._collect(s["values"])
            elif isinstance(t, (dict, list)):
                self._collect(t)

    def deref(self, s):
        while True:
            if isinstance(s, str) and s not in PRIMITIVES:
                s = self.named[s]
            elif isinstance(s, dict) and isinstance(s.get("type"), (dict, list)):
                s = s["type"]
            elif isinstance(s, dict) and s.get("type") in self.named:
                s = self.named[s["type"]]
            else:
                return s

    @staticmethod
    def kind(s):
        if isinstance(s, str):
            return s
        if isinstance(s, list):
            return "union"
        return "record" if s["type"] == "error" else s["type"]

    def label(self, b):
        d = self.deref(b)
        k = self.kind(d)
        return d["name"] if k in ("record", "enum", "fixed") else k

    def logical(self, s):
        """The logical type valid on `s` (per the Avro 1.12 rules), else None."""
        if not isinstance(s, dict):
            return None
        lt = s.get("logicalType")
        k = self.kind(s)
        if lt == "decimal":
            p, sc = s.get("precision"), s.get("scale", 0)
            if not isinstance(p, int) or p <= 0 or not isinstance(sc, int) or sc < 0 or sc > p:
                return None
            if k == "fixed" and p > max_decimal_digits(s["size"]):
                return None
            return lt if k in ("bytes", "fixed") else None
        ok = {
            "big-decimal": k == "bytes",
            "uuid": k == "string" or (k == "fixed" and s.get("size") == 16),
            "date": k == "int",
            "time-millis": k == "int",
            "time-micros": k == "long",
            "timestamp-millis": k == "long",
            "timestamp-micros": k == "long",
            "timestamp-nanos": k == "long",
            "local-timestamp-millis": k == "long",
            "local-timestamp-micros": k == "long",
            "local-timestamp-nanos": k == "long",
            "duration": k == "fixed" and s.get("size") == 12,
        }
        return lt if ok.get(lt) else None

    def branch_of(self, union, v):
        """The union branch fastavro's (stripped, return_named_type) value belongs to."""
        if isinstance(v, tuple):
            for b in union:
                if self.label(b) == v[0]:
                    return b, v[1]
            raise AssertionError(f"no branch named {v[0]} in {union}")
        if v is None:
            want = ("null",)
        elif isinstance(v, bool):
            want = ("boolean",)
        elif isinstance(v, int):
            want = ("int", "long")
        elif isinstance(v, float):
            want = ("float", "double")
        # Without a tuple: a named type read from a writer that was not a union (a reader
        # union wraps it), or a default value ("NaN" for a float, latin-1 text for bytes).
        elif isinstance(v, (bytes, bytearray)):
            want = ("bytes", "fixed")
        elif isinstance(v, str):
            want = ("string", "enum", "float", "double", "bytes", "fixed")
        elif isinstance(v, list):
            want = ("array",)
        elif isinstance(v, dict):
            want = ("map", "record")  # a record default value is a plain dict
        else:
            raise AssertionError(f"unexpected union value {v!r}")
        for w in want:
            for b in union:
                if self.kind(self.deref(b)) == w:
                    return b, v
        raise AssertionError(f"no branch for {v!r} in {union}")

    # -- value generation -----------------------------------------------------------------

    def gen(self, rng, s, depth, wild):
        s = self.deref(s)
        k = self.kind(s)
        deep = depth > 5
        if k == "union":
            branches = s
            if deep and "null" in branches:
                b = "null"
            else:
                b = rng.choice(branches)
            if b == "null":
                return None
            return (self.label(b), self.gen(rng, b, depth + 1, wild))
        lt = self.logical(s)
        if lt:
            return gen_logical(rng, s, lt, wild)
        if k == "null":
            return None
        if k == "boolean":
            return rng.random() < 0.5
        if k == "int":
            return rng.choice(
                [0, 1, -1, 63, 64, -64, -65, 2**31 - 1, -(2**31), rng.randint(-(2**31), 2**31 - 1)]
            )
        if k == "long":
            return rng.choice(
                [0, -1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), rng.randint(-(2**63), 2**63 - 1),
                 rng.randint(-1000, 1000)]
            )
        if k == "float":
            return f32(gen_float(rng, 32))
        if k == "double":
            return gen_float(rng, 64)
        if k == "bytes":
            return gen_bytes(rng, rng.choice([0, 1, 3, 8, 20, 150]))
        if k == "string":
            return gen_str(rng)
        if k == "fixed":
            return gen_bytes(rng, s["size"])
        if k == "enum":
            return rng.choice(s["symbols"])
        if k == "array":
            n = 0 if deep else rng.choice([0, 1, 2, 3, 3, 70 if depth < 2 else 2])
            return [self.gen(rng, s["items"], depth + 1, wild) for _ in range(n)]
        if k == "map":
            n = 0 if deep else rng.choice([0, 1, 2, 3])
            out = {}
            for _ in range(n):
                out[rng.choice(["", gen_str(rng, 6), "key", "k\"\\"])] = self.gen(
                    rng, s["values"], depth + 1, wild
                )
            return out
        if k == "record":
            return {f["name"]: self.gen(rng, f["type"], depth + 1, wild) for f in s["fields"]}
        raise AssertionError(f"cannot generate {s!r}")

    # -- an independent encoder (arrays and maps in several blocks) ----------------------------

    def encode(self, s, v, rng, out: bytearray):
        """Encodes fastavro's stripped value `v` again, splitting arrays and maps into
        several blocks, some with a negative count and a byte size (which fastavro's
        writer never produces)."""
        s = self.deref(s)
        k = self.kind(s)
        if k == "union":
            b, inner = self.branch_of(s, v)
            out += zigzag(next(i for i, x in enumerate(s) if x is b))
            self.encode(b, inner, rng, out)
        elif k == "null":
            pass
        elif k == "boolean":
            out.append(1 if v else 0)
        elif k in ("int", "long"):
            out += zigzag(v)
        elif k == "float":
            out += struct.pack("<f", v)
        elif k == "double":
            out += struct.pack("<d", v)
        elif k == "bytes":
            out += zigzag(len(v)) + bytes(v)
        elif k == "string":
            b = v.encode("utf-8")
            out += zigzag(len(b)) + b
        elif k == "fixed":
            out += bytes(v)
        elif k == "enum":
            out += zigzag(s["symbols"].index(v))
        elif k in ("array", "map"):
            items = list(v) if k == "array" else list(v.items())
            while items:
                n = rng.randint(1, 3)
                chunk, items = items[:n], items[n:]
                body = bytearray()
                for item in chunk:
                    if k == "array":
                        self.encode(s["items"], item, rng, body)
                    else:
                        key = item[0].encode("utf-8")
                        body += zigzag(len(key)) + key
                        self.encode(s["values"], item[1], rng, body)
                if rng.random() < 0.5:
                    out += zigzag(-len(chunk)) + zigzag(len(body)) + body
                    STATS["negative-count blocks"] += 1
                else:
                    out += zigzag(len(chunk)) + body
            out.append(0)
        elif k == "record":
            for f in s["fields"]:
                self.encode(f["type"], v[f["name"]], rng, out)
        else:
            raise AssertionError(k)

    # -- expected output --------------------------------------------------------------------

    def avro_json(self, s, v):
        s = self.deref(s)
        k = self.kind(s)
        if k == "union":
            b, inner = self.branch_of(s, v)
            if self.kind(self.deref(b)) == "null":
                return None
            return Obj([(self.label(b), self.avro_json(b, inner))])
        if k == "null":
            return None
        if k in ("boolean", "int", "long", "string", "enum"):
            return v
        if k in ("float", "double"):
            if isinstance(v, str):  # a default such as "NaN"
                v = float(v.replace("Infinity", "inf"))
            return Flt(f32(v) if k == "float" else v, 32 if k == "float" else 64)
        if k in ("bytes", "fixed"):
            return v if isinstance(v, str) else bytes(v).decode("latin-1")
        if k == "array":
            return [self.avro_json(s["items"], x) for x in v]
        if k == "map":
            return Obj([(key, self.avro_json(s["values"], x)) for key, x in v.items()])
        if k == "record":
            return Obj([(f["name"], self.avro_json(f["type"], v[f["name"]])) for f in s["fields"]])
        raise AssertionError(k)

    def friendly(self, s, v, lv):
        """Friendly JSON from the raw value `v` and fastavro's logical value `lv` (or MISSING)."""
        s = self.deref(s)
        k = self.kind(s)
        if k == "union":
            b, inner = self.branch_of(s, v)
            linner = MISSING
            if lv is not MISSING:
                linner = lv[1] if isinstance(lv, tuple) else lv
            return self.friendly(b, inner, linner)
        lt = self.logical(s)
        if lt:
            text = logical_text(s, lt, v, lv)
            if text is not None:
                STATS[f"friendly {lt}"] += 1
                return text
            STATS[f"friendly {lt} shown as its underlying value"] += 1
        if k in ("bytes", "fixed"):
            return bytes(v).hex()
        if k in ("float", "double"):
            return Flt(v, 32 if k == "float" else 64)
        if k in ("null", "boolean", "int", "long", "string", "enum"):
            return v
        sub = (lambda i: MISSING) if lv is MISSING else (lambda i: lv[i])
        if k == "array":
            return [self.friendly(s["items"], x, sub(i)) for i, x in enumerate(v)]
        if k == "map":
            return Obj([(key, self.friendly(s["values"], x, sub(key))) for key, x in v.items()])
        if k == "record":
            return Obj(
                [(f["name"], self.friendly(f["type"], v[f["name"]], sub(f["name"]))) for f in s["fields"]]
            )
        raise AssertionError(k)


# ----------------------------------------------------------------------------------------
# Value generation helpers
# ----------------------------------------------------------------------------------------

CHARS = (
    ["a", "b", "z", "Q", "0", "9", " ", "_"] * 3
    + ["\"", "\\", "/", "\x00", "\x01", "\x1f", "\t", "\n", "\r", "\x7f"]
    + ["\x80", "\xa0", "é", "ÿ", "Ā", "Ж", "中", "\u2028", "\u2029", "\ufeff", "\uffff"]
    + ["😀", "𝄞", "\U0010ffff"]
)


def gen_str(rng, maxlen=12):
    n = rng.choice([0, 1, 2, 5, maxlen, maxlen, 200 if maxlen > 6 else 7])
    return "".join(rng.choice(CHARS) for _ in range(n))


def gen_bytes(rng, n):
    return bytes(rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)]) for _ in range(n))


F32_EDGES = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38,
             16777216.0, 16777217.0, 1e10, 1e-7, 123456.789, 0.5]
F64_EDGES = [0.0, -0.0, 1.0, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
             -1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 1e22, 1e-7, 1e16, 123456789.125]


def gen_float(rng, width):
    c = rng.random()
    if c < 0.06:
        return rng.choice([math.nan, math.inf, -math.inf])
    if c < 0.4:
        return rng.choice(F32_EDGES if width == 32 else F64_EDGES)
    if c < 0.7:
        return rng.uniform(-1000, 1000)
    e = rng.randint(-40, 38) if width == 32 else rng.randint(-300, 300)
    return rng.uniform(-10, 10) * 10.0**e


def us_of(d):
    delta = d - (EPOCH if d.tzinfo else EPOCH_NAIVE)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


MIN_US = us_of(dt.datetime(1, 1, 1, tzinfo=UTC))
MAX_US = us_of(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
NOW_US = us_of(dt.datetime(2024, 6, 1, tzinfo=UTC))


def gen_logical(rng, s, lt, wild):
    """A value fastavro can write for logical type `lt` on `s`: Python logical objects
    where fastavro converts them, raw values otherwise (and, in wild schemas, raw values
    outside the range a logical view can show)."""
    out_of_range = wild and rng.random() < 0.25
    if lt == "decimal":
        p, sc = s["precision"], s.get("scale", 0)
        digits = rng.randint(1, p)
        unscaled = rng.choice([0, 1, -1, rng.randint(1, 10**digits - 1) * rng.choice([1, -1]),
                               10**p - 1, -(10**p - 1)])
        sign = 1 if unscaled < 0 else 0
        return decimal.Decimal((sign, tuple(int(c) for c in str(abs(unscaled))), -sc))
    if lt == "big-decimal":
        unscaled = rng.choice([0, 5, -1, rng.randint(-(10**40), 10**40)])
        scale = rng.choice([0, 1, 2, 7, 20])
        if wild and rng.random() < 0.3:
            scale = -rng.choice([1, 3])  # valid: Java writes BigDecimal("1E+3") so
            unscaled = unscaled or 7
        return zigzag(len(signed_be(unscaled))) + signed_be(unscaled) + zigzag(scale)
    if lt == "uuid":
        if s["type"] == "string":
            return uuid.UUID(int=rng.getrandbits(128))
        return gen_bytes(rng, 16)
    if lt == "duration":
        return struct.pack("<III", *(rng.choice([0, 1, 999, 1000, 4005, 2**32 - 1, rng.getrandbits(32)]) for _ in range(3)))
    if lt == "date":
        if out_of_range:
            return rng.choice([1, -1]) * rng.randint(3_700_000, 2**31 - 1)
        if rng.random() < 0.15:
            return rng.randint(-719162, 2932896)  # raw, in range
        return dt.date.fromordinal(rng.choice([1, DAYS_SHIFT, 3652059, rng.randint(1, 3652059)]))
    if lt == "time-millis":
        if out_of_range:
            return rng.choice([-1, -rng.randint(1, 2**31), 86_400_000, rng.randint(86_400_000, 2**31 - 1)])
        ms = rng.choice([0, 86_399_999, rng.randrange(86_400_000)])
        return dt.time(ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000 * 1000)
    if lt == "time-micros":
        if out_of_range:
            return rng.choice([-1, 86_400_000_000, rng.randint(86_400_000_000, 2**62)])
        us = rng.choice([0, 86_399_999_999, rng.randrange(86_400_000_000)])
        return dt.time(us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60, us % 1_000_000)
    if lt.endswith("-nanos"):
        return rng.choice([0, -1, 1, 2**63 - 1, -(2**63), rng.randint(-(2**63), 2**63 - 1)])
    # timestamp-millis/micros, local-timestamp-millis/micros
    millis = lt.endswith("millis")
    if out_of_range:
        # Far beyond year 9999 or before year 0: the friendly view shows the raw number.
        scale = 1 if millis else 1000
        hi = rng.randint(260_000_000_000_000 * scale, 9_000_000_000_000_000_000)
        lo = -rng.randint(63_000_000_000_000 * scale, 9_000_000_000_000_000_000)
        return rng.choice([hi, lo])
    us = rng.choice([0, -1000, MIN_US, MAX_US - 999, rng.randint(MIN_US, MAX_US),
                     NOW_US + rng.randint(-(10**15), 10**15)])
    if millis:
        us -= us % 1000
    if rng.random() < 0.15:
        return us // 1000 if millis else us  # raw
    base = EPOCH if lt.startswith("timestamp") else EPOCH_NAIVE
    return base + dt.timedelta(microseconds=us)


def logical_text(s, lt, v, lv):
    """The friendly text meshlens should print, or None for "falls back to the value"."""
    have = lv is not MISSING
    if lt == "decimal":
        scale = s.get("scale", 0)
        if have and isinstance(lv, decimal.Decimal):
            sign, digits, exp = lv.as_tuple()
            unscaled = int("".join(map(str, digits)) or "0") * 10 ** (exp + scale)
            return decimal_text(-unscaled if sign else unscaled, scale)
        if len(v) == 0:
            return None
        return decimal_text(int.from_bytes(v, "big", signed=True), scale)
    if lt == "big-decimal":
        b = bytes(v)
        n, pos = read_varint(b, 0)
        if n is None or n < 0 or pos + n > len(b) or n == 0:
            return None
        unscaled = int.from_bytes(b[pos:pos + n], "big", signed=True)
        scale, pos = read_varint(b, pos + n)
        if scale is None or pos != len(b):
            return None
        return decimal_text(unscaled, scale)
    if lt == "uuid":
        if s["type"] == "string" or Parsed.kind(s) == "string":
            return str(lv) if have else v
        h = bytes(v).hex()
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    if lt == "duration":
        months, days, ms = struct.unpack("<III", bytes(v))
        return f"P{months}M{days}DT{ms // 1000}.{ms % 1000:03}S"
    if lt == "date":
        if have:
            return lv.isoformat()
        try:
            return dt.date.fromordinal(v + DAYS_SHIFT).isoformat()
        except (ValueError, OverflowError):
            return None
    if lt in ("time-millis", "time-micros"):
        unit = 1000 if lt == "time-millis" else 1_000_000
        if not 0 <= v < 86400 * unit:
            return None  # fastavro wraps -1 to 00:00:00.999999; meshlens shows the number
        if have:
            frac = lv.microsecond // 1000 if unit == 1000 else lv.microsecond
        else:
            lv = dt.time(v // unit // 3600, v // unit // 60 % 60, v // unit % 60)
            frac = v % unit
        width = 3 if unit == 1000 else 6
        return f"{lv.hour:02}:{lv.minute:02}:{lv.second:02}.{frac:0{width}}"
    # timestamps
    utc = lt.startswith("timestamp")
    unit = {"millis": 1000, "micros": 1_000_000, "nanos": 1_000_000_000}[lt.rsplit("-", 1)[1]]
    width = {1000: 3, 1_000_000: 6, 1_000_000_000: 9}[unit]
    if have and isinstance(lv, dt.datetime):
        d, frac = lv, (lv.microsecond // 1000 if unit == 1000 else lv.microsecond)
    else:
        secs, frac = divmod(v, unit)
        try:
            d = EPOCH_NAIVE + dt.timedelta(seconds=secs)
        except OverflowError:
            return None
    return (
        f"{d.year:04}-{d.month:02}-{d.day:02}T{d.hour:02}:{d.minute:02}:{d.second:02}"
        f".{frac:0{width}}{'Z' if utc else ''}"
    )


def read_varint(b, pos):
    shift = value = 0
    while True:
        if pos >= len(b) or shift > 63:
            return None, pos
        c = b[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        if not c & 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7


# ----------------------------------------------------------------------------------------
# Running meshlens and recording results
# ----------------------------------------------------------------------------------------


class Runner:
    def __init__(self, args):
        self.bin = args.bin
        self.seed = args.seed
        self.verbose = args.verbose
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.runs = 0
        self.skipped = 0
        self.blocks = 0

    def skip(self, why):
        self.skipped += 1
        STATS["skipped: " + why] += 1

    def count(self, what, n=1):
        STATS[what] += n

    def meshlens(self, argv, stdin=None):
        self.runs += 1
        try:
            p = subprocess.run(
                [str(self.bin), *argv], input=stdin, capture_output=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return -1, "", f"cannot run {self.bin}: {e}"
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def ok(self):
        self.passed += 1

    def fail(self, **info):
        self.failed += 1
        self.failures.append(info)
        if self.verbose:
            print(f"FAIL schema {info.get('schema_no')} {info.get('framing')}: {info.get('diff')}")

    def report(self, limit=10):
        for n, f in enumerate(self.failures[:limit], 1):
            print(f"--- failure {n}/{len(self.failures)} " + "-" * 50)
            print(f"seed {self.seed}, schema #{f.get('schema_no')} "
                  f"(rerun: python3 tests/avro_differential.py --seed {self.seed} --only {f.get('schema_no')})")
            print(f"framing: {f.get('framing')}  record: {f.get('record')}  format: {f.get('format')}")
            print(f"command: meshlens {' '.join(f.get('argv', []))}")
            if f.get("schema"):
                print(f"schema: {trunc(f['schema'], 1500)}")
            if f.get("reader"):
                print(f"reader: {trunc(f['reader'], 1500)}")
            if f.get("payload") is not None:
                print(f"payload ({len(f['payload'])} bytes): {trunc(f['payload'].hex(), 600)}")
            if "expected" in f:
                print(f"expected: {trunc(f['expected'], 800)}")
            if "actual" in f:
                actual = f["actual"]
                try:
                    actual = dumps(parse_actual(actual))  # compact, even for --pretty output
                except ValueError:
                    pass
                print(f"actual:   {trunc(actual, 800)}")
            print(f"difference: {f.get('diff')}")
        if len(self.failures) > limit:
            print(f"... and {len(self.failures) - limit} more failures")
        if self.failures:
            print("(rerun with --only K --keep DIR to keep the schema and payload files)")


# ----------------------------------------------------------------------------------------
# One schema: generate, write in every framing, decode, compare
# ----------------------------------------------------------------------------------------

FRAMINGS = [
    "single-object", "confluent-v0", "confluent-v1", "glue", "apicurio3", "apicurio2",
    "header-value-schema-id", "header-value-schema-guid", "header-key-schema-id",
    "header-apicurio-global-id", "header-apicurio-content-id", "header-x-avro-schema-id", "header-fingerprint-hex",
    "header-fingerprint-decimal", "bare-forced", "bare-auto",
]
DESCRIBED = {
    "single-object": "single-object", "confluent-v0": "confluent v0", "confluent-v1": "confluent v1",
    "glue": "glue", "apicurio3": "content id", "apicurio2": "global id", "bare-forced": "bare",
    "bare-auto": "bare",
}


def fa(raw):
    """A schema for fastavro's functions: always the JSON data, never parse_schema's output
    (fastavro re-parses the output of parse_schema for non-record roots and then loses
    explicit empty namespaces)."""
    return copy.deepcopy(raw)


def fastavro_reads_fully(schema, data):
    fo = io.BytesIO(data)
    try:
        schemaless_reader(fo, fa(schema), None)
    except Exception:
        return False
    return fo.tell() == len(data)


class SchemaCase:
    def __init__(self, runner, workdir, no, raw, rng, wild, nrecords):
        self.r = runner
        self.no = no
        self.rng = rng
        self.wild = wild
        self.raw = raw
        self.dir = workdir / f"s{no:03}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.text = json.dumps(raw, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        self.wpath = self.dir / "writer.avsc"
        self.wpath.write_text(self.text, encoding="utf-8")
        self.full = Parsed(raw)
        self.raw_stripped = strip_logical(copy.deepcopy(raw))
        parse_schema(copy.deepcopy(self.raw_stripped))  # fails early if fastavro rejects it
        self.nrecords = nrecords
        self.reblocked = []  # datums with arrays/maps in several blocks (for reader checks too)

    def fail(self, **info):
        info.setdefault("schema_no", self.no)
        info.setdefault("schema", json.dumps(self.raw, ensure_ascii=False, separators=(",", ":")))
        self.r.fail(**info)

    def check_output(self, framing, fmt, argv, payload, expected, stdout, rc, stderr, record):
        if rc != 0:
            self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record=record,
                      expected=dumps(expected), actual=f"(exit {rc}) {stderr.strip()}",
                      diff="meshlens failed")
            return
        try:
            actual = parse_actual(stdout)
        except ValueError as e:
            self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record=record,
                      expected=dumps(expected), actual=stdout.strip(), diff=f"output is not JSON: {e}")
            return
        d = compare(expected, actual)
        if d:
            self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record=record,
                      expected=dumps(expected), actual=stdout.strip(), diff=d)
        else:
            self.r.ok()

    def run(self, values=None):
        rng = self.rng
        if values is None:
            values = [self.full.gen(rng, self.full.p, 0, self.wild) for _ in range(self.nrecords)]
        datums, raws, logicals = [], [], []
        for v in values:
            buf = io.BytesIO()
            schemaless_writer(buf, fa(self.raw), v)
            d = buf.getvalue()
            datums.append(d)
            raws.append(schemaless_reader(io.BytesIO(d), fa(self.raw_stripped), None, return_named_type=True))
            try:
                lv = schemaless_reader(io.BytesIO(d), fa(self.raw), None, return_named_type=True)
            except Exception:
                lv = MISSING  # a wild value beyond what Python's datetime can hold
                self.r.count("records without fastavro logical values")
            logicals.append(lv)
        avro = [self.full.avro_json(self.full.p, v) for v in raws]
        friendly = [self.full.friendly(self.full.p, v, lv) for v, lv in zip(raws, logicals)]

        fp_hex = self.check_fingerprint()
        self.check_containers(values, avro, friendly)
        self.check_empty_container()
        self.check_single(datums, avro, friendly, fp_hex)
        self.check_reblocked(raws)
        return values, datums

    def check_empty_container(self):
        """A container file with no records (and user metadata) prints nothing."""
        codec = self.rng.choice(CODECS)
        path = self.dir / f"empty.{codec}.avro"
        with open(path, "wb") as fo:
            fastavro.writer(fo, fa(self.raw), [], codec=codec,
                            metadata={"user.key": "v\u00e9", "avro.custom": "x"})
        argv = ["avro", "decode", "--format", "avro-json", str(path)]
        rc, out, err = self.r.meshlens(argv)
        if rc != 0 or out != "":
            self.fail(framing=f"container/{codec} (no records)", format="avro-json", argv=argv,
                      payload=path.read_bytes(), record="-", expected="(no output)",
                      actual=f"(exit {rc}) {err.strip()} {trunc(out, 300)}", diff="empty file")
        else:
            self.r.ok()

    def check_reblocked(self, raws):
        """Arrays and maps in several blocks (negative counts with byte sizes): encoded
        here, decoded by fastavro (expected) and by meshlens."""
        if not raws:
            return
        i = self.rng.randrange(len(raws))
        out = bytearray()
        self.full.encode(self.full.p, raws[i], self.rng, out)
        blob = bytes(out)
        try:
            fo = io.BytesIO(blob)
            back = schemaless_reader(fo, fa(self.raw_stripped), None, return_named_type=True)
            assert fo.tell() == len(blob), "fastavro left bytes over"
        except Exception as e:
            print(f"schema #{self.no}: fastavro cannot read the re-blocked datum ({e}); skipped")
            self.r.skip("re-blocked datum unreadable by fastavro")
            return
        path = self.dir / f"rec{i}.reblocked.bin"
        path.write_bytes(blob)
        self.reblocked.append(blob)
        argv = ["avro", "decode", "--schema", str(self.wpath), "--framing", "bare",
                "--format", "avro-json", str(path)]
        rc, out, err = self.r.meshlens(argv)
        self.check_output("bare, arrays/maps re-blocked", "avro-json", argv, blob,
                          self.full.avro_json(self.full.p, back), out, rc, err, i)

    def check_fingerprint(self):
        canon = to_parsing_canonical_form(fa(self.raw))
        fp_hex = fa_fingerprint(canon, "CRC-64-AVRO")
        argv = ["schema", "fingerprint", str(self.wpath)]
        rc, out, err = self.r.meshlens(argv)
        parts = out.split()
        signed = int.from_bytes(bytes.fromhex(fp_hex), "little", signed=True)
        if rc != 0 or parts != [str(signed), fp_hex]:
            _, pcf, _ = self.r.meshlens(["schema", "fingerprint", "--pcf", str(self.wpath)])
            self.fail(framing="schema fingerprint", format="-", argv=argv, payload=None, record="-",
                      expected=f"{signed} {fp_hex}   (canonical form {canon})",
                      actual=f"{out.strip() or err.strip()}   (canonical form {pcf.strip()})",
                      diff="CRC-64-AVRO fingerprint differs")
        else:
            self.r.ok()
        return fp_hex

    def check_containers(self, values, avro, friendly):
        rng = self.rng
        for codec in CODECS:
            path = self.dir / f"data.{codec}.avro"
            with open(path, "wb") as fo:
                fastavro.writer(fo, copy.deepcopy(self.raw), values, codec=codec,
                                sync_interval=rng.choice([1, 40, 200]))
            payload = path.read_bytes()
            with open(path, "rb") as fo:
                blocks = [b.num_records for b in fastavro.block_reader(fo)]
            self.r.blocks += len(blocks)
            if sum(blocks) != len(values):
                self.r.skip("fastavro container file with a wrong record count")
                continue
            formats = [("avro-json", avro)] + ([("friendly", friendly)] if codec == "null" else [])
            for fmt, expected in formats:
                # --pretty indents single documents only: a container stays one per line.
                pretty = ["--pretty"] if rng.random() < 0.25 else []
                argv = ["avro", "decode", "--format", fmt, *pretty, str(path)]
                rc, out, err = self.r.meshlens(argv)
                framing = f"container/{codec}"
                if rc != 0:
                    self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record="all",
                              actual=f"(exit {rc}) {err.strip()}", diff="meshlens failed")
                    continue
                lines = json_lines(out)
                if len(lines) != len(expected):
                    self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record="all",
                              expected=f"{len(expected)} lines", actual=trunc(out, 800),
                              diff=f"expected {len(expected)} records, got {len(lines)} lines")
                    continue
                for i, (line, exp) in enumerate(zip(lines, expected)):
                    self.check_output(framing, fmt, argv, payload, exp, line, 0, "", i)

    def check_single(self, datums, avro, friendly, fp_hex):
        rng = self.rng
        fp8 = bytes.fromhex(fp_hex)
        signed = int.from_bytes(fp8, "little", signed=True)
        n = len(datums)
        if n == 0:
            return
        per = -(-len(FRAMINGS) // n)
        offset = rng.randrange(len(FRAMINGS))
        for i, d in enumerate(datums):
            for j in range(per):
                framing = FRAMINGS[(offset + i * per + j) % len(FRAMINGS)]
                self.single(framing, i, d, avro[i], fp8, signed)
            # The friendly view of a single datum too (the container covers every record).
            if i == 0:
                self.single("bare-forced", i, d, friendly[i], fp8, signed, fmt="friendly")

    def single(self, framing, i, d, expected, fp8, signed, fmt="avro-json"):
        rng = self.rng
        sid = rng.randrange(1, 2**31)
        guid = bytes(rng.randrange(256) for _ in range(16))
        extra, payload = [], d
        if framing == "single-object":
            payload = b"\xc3\x01" + fp8 + d
        elif framing == "confluent-v0":
            payload = b"\x00" + sid.to_bytes(4, "big") + d
        elif framing == "confluent-v1":
            payload = b"\x01" + guid + d
        elif framing == "glue":
            payload = b"\x03\x00" + guid + d
        elif framing == "apicurio3":
            payload, extra = b"\x00" + sid.to_bytes(4, "big") + d, ["--registry-kind", "apicurio3"]
        elif framing == "apicurio2":
            payload, extra = b"\x00" + sid.to_bytes(8, "big") + d, ["--registry-kind", "apicurio2"]
        elif framing == "header-value-schema-id":
            extra = ["--header", f"__value_schema_id=hex:00{sid:08x}"]
        elif framing == "header-value-schema-guid":
            extra = ["--header", f"__value_schema_id=hex:01{guid.hex()}"]
        elif framing == "header-key-schema-id":
            extra = ["--key", "--header", f"__key_schema_id=hex:00{sid:08x}"]
        elif framing == "header-apicurio-content-id":
            extra = ["--header", f"apicurio.value.contentId=hex:{sid:016x}"]
        elif framing == "header-apicurio-global-id":
            extra = ["--header", f"apicurio.value.globalId=hex:{sid:016x}"]
        elif framing == "header-x-avro-schema-id":
            extra = ["--header", f"x-avro-schema-id={sid}"]
        elif framing == "header-fingerprint-hex":
            extra = ["--header", f"x-avro-fingerprint={fp8.hex()}"]
        elif framing == "header-fingerprint-decimal":
            # Exactly 16 characters read as hex; a decimal that long carries its sign.
            text = str(signed) if len(str(signed)) != 16 else f"{signed:+d}"
            extra = ["--header", f"x-avro-fingerprint={text}"]
        elif framing == "bare-forced":
            extra = ["--framing", "bare"] + (["--pretty"] if rng.random() < 0.3 else [])
        elif framing == "bare-auto":
            if self.bare_is_ambiguous(d):
                framing, extra = "bare-forced", ["--framing", "bare"]
                self.r.count("bare datums that also parse as framed (forced bare)")
            elif d[:1] in (b"\x00", b"\x01", b"\x03"):
                self.r.count("bare datums starting with a framing byte (auto)")
        else:
            raise AssertionError(framing)
        use_stdin = rng.random() < 0.3
        path = self.dir / f"rec{i}.{framing}.bin"
        path.write_bytes(payload)
        argv = ["avro", "decode", "--schema", str(self.wpath), "--format", fmt, "--describe", *extra,
                "-" if use_stdin else str(path)]
        rc, out, err = self.r.meshlens(argv, stdin=payload if use_stdin else b"")
        want = DESCRIBED.get(framing, "header")
        described = next((l for l in err.splitlines() if l.startswith("framing:")), "")
        if rc == 0 and want not in described.lower():
            self.fail(framing=framing, format=fmt, argv=argv, payload=payload, record=i,
                      expected=f"framing containing {want!r}", actual=described or err.strip(),
                      diff="--describe names another framing")
            return
        self.check_output(framing, fmt, argv, payload, expected, out, rc, err, i)

    def bare_is_ambiguous(self, d):
        """A bare datum whose first bytes are a framing prefix that also decodes cleanly."""
        if d[:4] == b"Obj\x01" or (d[:2] == b"\xc3\x01" and len(d) >= 10):
            return True
        for prefix_len, ok in ((5, d[:1] == b"\x00"), (17, d[:1] == b"\x01"), (18, d[:2] == b"\x03\x00")):
            if ok and len(d) >= prefix_len and fastavro_reads_fully(self.raw_stripped, d[prefix_len:]):
                return True
        return False


# ----------------------------------------------------------------------------------------
# Reader != writer
# ----------------------------------------------------------------------------------------

PROMOTIONS = {
    "int": ["long", "float", "double"],
    "long": ["float", "double"],
    "float": ["double"],
    "string": ["bytes"],
    "bytes": ["string"],
}

NEW_FIELDS = [
    ("int", 42), ("string", "dflt ü \u0000"), (["null", "string"], None), (["string", "null"], "x"),
    ({"type": "array", "items": "int"}, [1, 2]), ({"type": "map", "values": "long"}, {"k": 1, "": 2}),
    ("bytes", "\u00ff\u0000a"), ("double", 1.5), ("float", 0.1), ("boolean", False),
]


def derive_reader(rng, raw, parsed):
    """A reader schema for a record writer, with the changes it made (or None)."""
    if not (isinstance(raw, dict) and raw.get("type") in ("record", "error")):
        return None, []
    r = copy.deepcopy(raw)
    changes = []
    wfull = full_of(raw, None)
    short = raw["name"].rsplit(".", 1)[-1]
    recursive = short in json.dumps(raw["fields"])
    if not recursive and rng.random() < 0.4:
        name = raw["name"].rsplit(".", 1)
        r["name"] = ".".join(name[:-1] + [name[-1] + "V2"])
        r["aliases"] = [wfull]
        changes.append("renamed record with alias")
    fields = r["fields"]
    for f in fields:
        t = f["type"]
        base = t["type"] if isinstance(t, dict) and set(t) == {"type"} else t
        if isinstance(base, str) and base in PROMOTIONS and rng.random() < 0.6:
            f["type"] = rng.choice(PROMOTIONS[base])
            f.pop("default", None)
            changes.append(f"{f['name']}: {base} -> {f['type']}")
        elif isinstance(t, dict) and t.get("type") == "enum" and rng.random() < 0.6:
            t = copy.deepcopy(t)
            if t.get("default") is None and len(t["symbols"]) > 1 and rng.random() < 0.5:
                dropped = t["symbols"].pop()
                t["default"] = t["symbols"][0]
                changes.append(f"{f['name']}: enum drops {dropped} with default")
            extra = [s for s in ["ADDED", "Z_NEW"] if s not in t["symbols"]]
            t["symbols"] = t["symbols"][::-1] + extra
            f["type"] = t
            f.pop("default", None)
            changes.append(f"{f['name']}: enum symbols reordered/extended")
        elif (isinstance(t, dict) and t.get("type") in ("array", "map")
              and isinstance(t.get("items", t.get("values")), str)
              and t.get("items", t.get("values")) in PROMOTIONS and rng.random() < 0.5):
            key = "items" if t["type"] == "array" else "values"
            t = f["type"] = dict(t)
            old = t[key]
            t[key] = rng.choice(PROMOTIONS[old])
            f.pop("default", None)
            changes.append(f"{f['name']}: {t['type']} of {old} -> of {t[key]}")
        elif not isinstance(t, list) and rng.random() < 0.15 and not is_null_type(t):
            f["type"] = ["null", t]
            f.pop("default", None)
            changes.append(f"{f['name']}: T -> [null, T]")
        if rng.random() < 0.2:
            old = f["name"]
            f["name"] = f"{old}_renamed"
            f["aliases"] = [old]
            changes.append(f"{old}: renamed with alias")
    if len(fields) > 1 and rng.random() < 0.3:
        dropped = fields.pop(rng.randrange(len(fields)))
        changes.append(f"dropped {dropped['name']}")
    if rng.random() < 0.7:
        t, default = rng.choice(NEW_FIELDS)
        fields.insert(rng.randrange(len(fields) + 1), {"name": "added_field", "type": t, "default": default})
        changes.append(f"added field {json.dumps(t)} default {json.dumps(default)}")
    if rng.random() < 0.4:
        rng.shuffle(fields)
        changes.append("reordered fields")
    if rng.random() < 0.5:
        changes += rename_nested_type(rng, r, parsed)
    if not changes or not fastavro_resolves_unions(r):
        return None, []
    return r, changes


def named_definitions(t, out):
    """Inline definitions of named types below the root of schema JSON `t`."""
    if isinstance(t, list):
        for b in t:
            if isinstance(b, dict) and b.get("type") in NAMED:
                out.append(b)
            named_definitions(b, out)
    elif isinstance(t, dict):
        for f in t.get("fields", []):
            if isinstance(f["type"], dict) and f["type"].get("type") in NAMED:
                out.append(f["type"])
            named_definitions(f["type"], out)
        for key in ("items", "values"):
            if key in t:
                if isinstance(t[key], dict) and t[key].get("type") in NAMED:
                    out.append(t[key])
                named_definitions(t[key], out)
    return out


def rename_nested_type(rng, r, parsed):
    """Renames one nested record/enum/fixed of reader `r` (in place), with an alias (full
    or short) for its writer name. Only types whose short name is unique and that are not
    referenced by name elsewhere."""
    shorts = collections.Counter(n.rsplit(".", 1)[-1] for n in parsed.named)
    text = json.dumps(r)
    candidates = []
    for d in named_definitions(r, []):
        short = d["name"].rsplit(".", 1)[-1]
        mentions = len(re.findall(r'[".]' + re.escape(short) + '"', text))
        if shorts[short] == 1 and mentions == 1:
            candidates.append(d)
    if not candidates:
        return []
    d = rng.choice(candidates)
    parts = d["name"].rsplit(".", 1)
    old_short = parts[-1]
    old_full = next(n for n in parsed.named if n.rsplit(".", 1)[-1] == old_short)
    d["name"] = ".".join(parts[:-1] + [old_short + "New"])
    alias = old_short if rng.random() < 0.5 else old_full
    d["aliases"] = list(d.get("aliases", [])) + [alias]
    STATS["derived readers renaming a nested type"] += 1
    return [f"{d['type']} {old_full} renamed, alias {alias!r}"]


def kinds_in_unions(t, out=None):
    """The underlying type names of the unnamed branches of every union in `t`."""
    out = [] if out is None else out
    if isinstance(t, list):
        kinds = set()
        for b in t:
            if isinstance(b, str) and b in PRIMITIVES:
                kinds.add(b)
            elif isinstance(b, dict) and b.get("type") in PRIMITIVES:
                kinds.add(b["type"])
            kinds_in_unions(b, out)
        out.append(kinds)
    elif isinstance(t, dict):
        for key in ("fields",):
            for f in t.get(key, []):
                kinds_in_unions(f["type"], out)
        for key in ("items", "values"):
            if key in t:
                kinds_in_unions(t[key], out)
        if isinstance(t.get("type"), (dict, list)):
            kinds_in_unions(t["type"], out)
    return out


def fastavro_resolves_unions(reader):
    """fastavro 1.13 resolves a writer branch to the FIRST reader branch it can be read
    as, not to the same type (a writer `bytes` branch becomes `string` in a union
    ["string","bytes"]); Java and the specification pick the exact type first. Derived
    readers whose unions have such a pair are not compared against fastavro."""
    promotable = [("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
                  ("long", "double"), ("float", "double"), ("string", "bytes")]
    return not any(a in k and b in k for k in kinds_in_unions(reader) for a, b in promotable)


def is_null_type(t):
    return t == "null" or (isinstance(t, dict) and t.get("type") == "null")


def check_reader(runner, case, reader_raw, changes, datums, values_for_container, expect_errors=False,
                 extra_datums=()):
    """Decode `datums` (and a container of them) with --reader; compare with fastavro.
    Where fastavro cannot resolve a datum, meshlens must fail too if `expect_errors`
    (hand-written cases), else the datum is not compared."""
    try:
        rp = Parsed(reader_raw)
        r_stripped = strip_logical(copy.deepcopy(reader_raw))
        parse_schema(copy.deepcopy(r_stripped))
    except Exception:
        runner.skip("reader schema rejected by fastavro")
        return
    rpath = case.dir / "reader.avsc"
    rtext = json.dumps(reader_raw, ensure_ascii=False)
    rpath.write_text(rtext, encoding="utf-8")
    expected = []
    container_records = len(datums)
    datums = list(datums) + list(extra_datums)  # extra: bare only (re-blocked: skips blocks)
    for d in datums:
        try:
            v = schemaless_reader(io.BytesIO(d), fa(case.raw_stripped), fa(r_stripped), return_named_type=True)
        except Exception:
            expected.append(MISSING)  # fastavro cannot resolve this datum
            continue
        expected.append(rp.avro_json(rp.p, v))
    for i, (d, exp) in enumerate(zip(datums, expected)):
        if exp is MISSING and not expect_errors:
            runner.skip("datum fastavro cannot resolve to the derived reader")
            continue
        path = case.dir / f"rec{i}.reader.bin"
        path.write_bytes(d)
        argv = ["avro", "decode", "--schema", str(case.wpath), "--reader", str(rpath),
                "--framing", "bare", "--format", "avro-json", str(path)]
        rc, out, err = runner.meshlens(argv)
        if exp is MISSING:
            lines = err.strip().splitlines()
            if rc == 1 and out == "" and len(lines) == 1 and lines[0].startswith("error: "):
                runner.ok()
            else:
                case.fail(framing=f"reader/bare ({'; '.join(changes)})", format="avro-json", argv=argv,
                          payload=d, record=i, reader=rtext, expected="exit 1 with one `error: ...` line "
                          "(fastavro cannot resolve this datum)", actual=f"(exit {rc}) {out.strip()} {err.strip()}",
                          diff="meshlens should reject the datum")
            continue
        before = runner.failed
        case.check_output(f"reader/bare ({'; '.join(changes)})", "avro-json", argv, d, exp, out, rc, err, i)
        if runner.failed > before:
            runner.failures[-1]["reader"] = rtext
    expected = expected[:container_records]
    if values_for_container is not None and all(e is not MISSING for e in expected):
        path = case.dir / "reader.container.avro"
        with open(path, "wb") as fo:
            fastavro.writer(fo, copy.deepcopy(case.raw), values_for_container, codec="deflate", sync_interval=60)
        argv = ["avro", "decode", "--reader", str(rpath), "--format", "avro-json", str(path)]
        rc, out, err = runner.meshlens(argv)
        lines = json_lines(out)
        if rc != 0 or len(lines) != len(expected):
            case.fail(framing="reader/container", format="avro-json", argv=argv, payload=path.read_bytes(),
                      record="all", reader=rtext, actual=f"(exit {rc}) {err.strip()} {trunc(out, 300)}",
                      diff=f"expected {len(expected)} records")
            return
        for i, (line, exp) in enumerate(zip(lines, expected)):
            before = runner.failed
            case.check_output("reader/container", "avro-json", argv, None, exp, line, 0, "", i)
            if runner.failed > before:
                runner.failures[-1]["reader"] = rtext


FIXED_READER_CASES = [
    # (writer, reader, values)
    ("int", "long", [0, -1, 2**31 - 1, -(2**31)]),
    ("int", "double", [7, -(2**31)]),
    ("long", "float", [2**40 + 1, -3]),
    ("float", "double", [0.1, -0.0, math.inf]),
    ("string", "bytes", ["h\u00e9llo", ""]),
    (["null", "int"], ["null", "long", "string"], [None, ("int", 5)]),
    ("int", ["null", "long"], [3]),
    (["null", "int"], "long", [("int", 5), None]),  # the null branch cannot be read as long
    (
        {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]},
        {"type": "enum", "name": "E", "symbols": ["B", "A"]},  # no default: C is an error
        ["A", "C", "B"],
    ),
    (
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]},
        {"type": "record", "name": "R", "fields": [{"name": "b", "type": "int"}]},  # no default
        [{"a": 1}],
    ),
    (
        {"type": "fixed", "name": "a.F", "size": 2},
        {"type": "fixed", "name": "b.G", "size": 2, "aliases": ["a.F"]},
        [b"\x00\xff"],
    ),
    (
        {"type": "record", "name": "n.Rec", "fields": [
            {"name": "a", "type": "int"},
            {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
            {"name": "gone", "type": {"type": "map", "values": ["null", "n.Rec"]}},
        ]},
        {"type": "record", "name": "m.Renamed", "aliases": ["n.Rec"], "fields": [
            {"name": "b", "aliases": ["a"], "type": "long"},
            {"name": "e", "type": {"type": "enum", "name": "n.Color", "symbols": ["BLUE", "RED"], "default": "RED"}},
            {"name": "new_rec", "type": {"type": "record", "name": "m.Inner", "fields": [
                {"name": "x", "type": "int", "default": 1}]}, "default": {"x": 9}},
            {"name": "new_union", "type": ["null", "string"], "default": None},
        ]},
        [{"a": 1, "e": "GREEN", "gone": {"k": None, "": ("n.Rec", {"a": 2, "e": "BLUE", "gone": {}})}},
         {"a": -5, "e": "RED", "gone": {}}],
    ),
]


def big_decimal(unscaled, scale):
    return zigzag(len(signed_be(unscaled))) + signed_be(unscaled) + zigzag(scale)


# Edge values that every run checks in every framing, whatever the seed: (schema, values).
EDGE_CASES = [
    ({"type": "bytes", "logicalType": "big-decimal"},
     [big_decimal(1, -3), big_decimal(-7, -1), big_decimal(12345, 3), big_decimal(-5, 0), big_decimal(0, 2)]),
    ({"type": "fixed", "name": "D", "size": 2, "logicalType": "decimal", "precision": 4, "scale": 2},
     [decimal.Decimal("-3.27"), decimal.Decimal("99.99"), decimal.Decimal("0.00"), decimal.Decimal("-0.01")]),
    ({"type": "int", "logicalType": "time-millis"}, [-1, 0, 86_399_999, 86_400_000, -(2**31)]),
    ({"type": "long", "logicalType": "time-micros"}, [-1, 0, 86_399_999_999, 86_400_000_000]),
    ({"type": "int", "logicalType": "date"}, [-719162, 2932896, 0, -1, 2**31 - 1, -(2**31)]),
    ({"type": "long", "logicalType": "timestamp-millis"},
     [-1, -62135596800000, 253402300799999, 253402300800000, -(2**63), 2**63 - 1]),
    ({"type": "long", "logicalType": "local-timestamp-micros"}, [-1, 1, -62135596800000000, 2**63 - 1]),
    ({"type": "long", "logicalType": "timestamp-nanos"}, [-1, 0, -(2**63), 2**63 - 1]),
    ({"type": "float"}, [math.nan, math.inf, -math.inf, -0.0, f32(1e-45), f32(3.4028235e38), f32(0.1), f32(16777216.0)]),
    ({"type": "double"}, [5e-324, 1.7976931348623157e308, math.nan, -math.inf, 0.1, 1e22, 1e16, 123456789.125, -0.0]),
    ({"type": "map", "values": "string"}, [{"": "", "\x00\x1f\x7f\u2028": "\"\\/\ud7ff\ue000\U0010ffff"}, {}]),
    ({"type": "fixed", "name": "n.Dur", "size": 12, "logicalType": "duration"},
     [struct.pack("<III", 14, 3, 4005), struct.pack("<III", 2**32 - 1, 0, 999), bytes(12)]),
    (["null", {"type": "enum", "name": "a.X", "symbols": ["A"]}, {"type": "enum", "name": "b.X", "symbols": ["B"]},
      {"type": "fixed", "name": "X", "size": 1}],
     [None, ("a.X", "A"), ("b.X", "B"), ("X", b"\xff")]),
]


def run_edge_cases(runner, workdir, only=None):
    for n, (schema, values) in enumerate(EDGE_CASES):
        if only is not None and only != 800 + n:
            continue
        case = SchemaCase(runner, workdir, 800 + n, schema, random.Random(f"edge-{n}"), True, len(values))
        case.run(values)


def run_fixed_reader_cases(runner, workdir, only=None):
    for n, (w, r, vals) in enumerate(FIXED_READER_CASES):
        if only is not None and only != 900 + n:
            continue
        rng = random.Random(f"fixed-reader-{n}")
        case = SchemaCase(runner, workdir, 900 + n, w, rng, False, 0)
        datums = []
        for v in vals:
            buf = io.BytesIO()
            schemaless_writer(buf, fa(case.raw), v)
            datums.append(buf.getvalue())
        check_reader(runner, case, r, [f"fixed reader case {n}"], datums, vals, expect_errors=True)


# ----------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--schemas", type=int, default=40)
    ap.add_argument("--records", type=int, default=5)
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "debug" / "meshlens")
    ap.add_argument("--only", type=int, default=None,
                    help="run only this schema number (8xx: edge case, 9xx: hand-written reader case)")
    ap.add_argument("--keep", type=Path, default=None, help="keep generated files here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if not args.bin.exists():
        print(f"error: {args.bin} not found (run `cargo build` first, or pass --bin)")
        print("0 passed, 1 failed")
        return 2

    started = time.monotonic()
    runner = Runner(args)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="meshlens-avro-diff-")
        workdir = Path(tmp.name)

    features = set()
    if args.only is None:
        schema_nos = range(args.schemas)
    else:
        schema_nos = [args.only] if args.only < 800 else []
    for no in schema_nos:
        rng = random.Random(f"{args.seed}:{no}")
        wild = rng.random() < 0.25
        gen = SchemaGen(rng, wild)
        raw = gen.root()
        features |= gen.features
        try:
            case = SchemaCase(runner, workdir, no, raw, rng, wild, args.records)
        except Exception as e:  # fastavro rejects the schema: a generator limitation
            print(f"schema #{no}: fastavro cannot use it ({e}); skipped")
            runner.skip("schema rejected by fastavro")
            continue
        try:
            values, datums = case.run()
            if rng.random() < 0.35 or no % 7 == 0:
                reader, changes = derive_reader(rng, raw, case.full)
                if reader is not None:
                    STATS["derived readers"] += 1
                    check_reader(runner, case, reader, changes, datums, values,
                                 extra_datums=case.reblocked)
                    features.add("reader != writer")
        except Exception as e:  # a harness bug: reported, and the run goes on
            case.fail(framing="-", format="-", record="-", diff=f"harness error: {e!r}")
        if args.verbose:
            print(f"schema #{no}: {runner.passed} passed, {runner.failed} failed so far")
    if args.only is None or 800 <= args.only < 900:
        run_edge_cases(runner, workdir, args.only)
    if args.only is None or args.only >= 900:
        run_fixed_reader_cases(runner, workdir, args.only)

    runner.report()
    elapsed = time.monotonic() - started
    print(f"seed {args.seed}: {len(schema_nos)} schemas x {args.records} records, "
          f"{runner.runs} meshlens runs, {runner.skipped} skipped, {elapsed:.1f}s")
    if args.verbose:
        print("features covered: " + ", ".join(sorted(features)))
        print(f"container blocks: {runner.blocks}; " + ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items())))
    print(f"{runner.passed} passed, {runner.failed} failed")
    if not args.keep:
        tmp.cleanup()
    return 1 if runner.failed or runner.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
