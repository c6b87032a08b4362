#!/usr/bin/env python3
"""Confluent's own Python client against `meshlens registry serve`.

Starts the registry on a free loopback port in a temporary directory, then drives it with
confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer: register, look
up, evolve, check, reject an incompatible schema, serialize and deserialize (also across
schema versions and with schema references), configure, delete. Messages the Python
serializer writes are also decoded by `meshlens avro decode --registry URL`.

Usage: registry_interop.py --bin target/debug/meshlens
Ends with a line "N passed, M failed"; exits 1 if anything failed.
"""

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import traceback

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "orders"
SUBJECT = "orders-value"

V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
    ],
}
# Adds a field with a default: BACKWARD compatible.
V2 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
# Adds a field without a default: not BACKWARD compatible.
V3_BAD = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "coupon", "type": "string"},
    ],
}
ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "shop",
    "fields": [{"name": "city", "type": "string"}],
}
SHIPMENT = {
    "type": "record",
    "name": "Shipment",
    "namespace": "shop",
    "fields": [{"name": "order", "type": "string"}, {"name": "to", "type": "shop.Address"}],
}


def avro(schema, references=None):
    return Schema(json.dumps(schema), "AVRO", references or [])


class Registry:
    """A `meshlens registry serve` child process."""

    def __init__(self, binary, directory):
        self.proc = subprocess.Popen(
            [binary, "registry", "serve", "--dir", directory, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = queue.Queue()

        def read():
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            first = lines.get(timeout=20)
        except queue.Empty:
            self.stop()
            raise RuntimeError("meshlens registry serve printed nothing in 20 s")
        if not first.startswith("listening on http://"):
            self.stop()
            raise RuntimeError(f"unexpected first line: {first!r}")
        self.url = first.split()[-1]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def expect_error(fn, status, code):
    try:
        fn()
    except SchemaRegistryError as e:
        assert (e.http_status_code, e.error_code) == (status, code), (
            f"expected HTTP {status} / {code}, got {e.http_status_code} / {e.error_code}: {e.error_message}"
        )
        return e
    raise AssertionError(f"expected HTTP {status} / {code}, but the call succeeded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the meshlens binary")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    registry = Registry(args.bin, f"{tmp.name}/registry")
    client = SchemaRegistryClient({"url": registry.url})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    state = {}
    checks = []

    def check(fn):
        checks.append(fn)
        return fn

    @check
    def register_returns_an_id_and_the_same_id_again():
        sid = client.register_schema(SUBJECT, avro(V1))
        assert isinstance(sid, int) and sid > 0, sid
        # A fresh client has no cache: the server itself must answer with the same id.
        again = SchemaRegistryClient({"url": registry.url}).register_schema(SUBJECT, avro(V1))
        assert again == sid, (again, sid)
        state["v1"] = sid

    @check
    def the_same_schema_under_another_subject_keeps_its_id():
        other = SchemaRegistryClient({"url": registry.url}).register_schema("audit-value", avro(V1))
        assert other == state["v1"], (other, state["v1"])

    @check
    def get_schema_by_id():
        s = SchemaRegistryClient({"url": registry.url}).get_schema(state["v1"])
        assert json.loads(s.schema_str) == V1, s.schema_str
        assert s.schema_type == "AVRO"

    @check
    def subjects_versions_and_latest():
        assert set(client.get_subjects()) == {SUBJECT, "audit-value"}, client.get_subjects()
        assert client.get_versions(SUBJECT) == [1]
        latest = client.get_latest_version(SUBJECT)
        assert (latest.version, latest.schema_id, latest.subject) == (1, state["v1"], SUBJECT), latest
        v = client.get_version(SUBJECT, 1)
        assert json.loads(v.schema.schema_str) == V1

    @check
    def lookup_finds_the_registered_version():
        found = SchemaRegistryClient({"url": registry.url}).lookup_schema(SUBJECT, avro(V1))
        assert (found.version, found.schema_id, found.subject) == (1, state["v1"], SUBJECT), found
        expect_error(lambda: client.lookup_schema(SUBJECT, avro(V3_BAD)), 404, 40403)

    @check
    def ids_list_their_subjects_and_versions():
        assert sorted(client.get_subjects_by_schema_id(state["v1"])) == ["audit-value", SUBJECT]
        versions = client.get_schema_versions(state["v1"])
        assert sorted((v.subject, v.version) for v in versions) == [("audit-value", 1), (SUBJECT, 1)]

    @check
    def compatibility_check_before_evolving():
        assert client.test_compatibility(SUBJECT, avro(V2)) is True
        assert client.test_compatibility(SUBJECT, avro(V3_BAD)) is False
        assert client.test_compatibility(SUBJECT, avro(V3_BAD), verbose=True) is False
        assert client.test_compatibility_all_versions(SUBJECT, avro(V2)) is True

    @check
    def evolve_with_a_compatible_schema():
        sid = client.register_schema(SUBJECT, avro(V2))
        assert sid != state["v1"]
        assert client.get_versions(SUBJECT) == [1, 2]
        state["v2"] = sid

    @check
    def an_incompatible_schema_is_rejected_with_409():
        e = expect_error(lambda: client.register_schema(SUBJECT, avro(V3_BAD)), 409, 409)
        assert "coupon" in e.error_message, e.error_message
        assert client.get_versions(SUBJECT) == [1, 2]

    @check
    def an_invalid_schema_is_42201():
        bad = Schema('{"type": "record", "name": "x", "fields": [{"name": "a", "type": "strnig"}]}', "AVRO")
        expect_error(lambda: client.register_schema("bad-value", bad), 422, 42201)

    @check
    def missing_things_are_4040x():
        expect_error(lambda: client.get_latest_version("nobody-value"), 404, 40401)
        expect_error(lambda: client.get_version(SUBJECT, 42), 404, 40402)
        expect_error(lambda: SchemaRegistryClient({"url": registry.url}).get_schema(424242), 404, 40403)

    @check
    def compatibility_levels_global_and_per_subject():
        assert client.get_compatibility() == "BACKWARD"
        assert client.set_compatibility(SUBJECT, "NONE") == {"compatibility": "NONE"}
        assert client.get_compatibility(SUBJECT) == "NONE"
        assert client.test_compatibility(SUBJECT, avro(V3_BAD)) is True
        deleted = client.delete_config(SUBJECT)
        assert deleted.compatibility_level.value == "NONE", deleted
        expect_error(lambda: client.get_compatibility(SUBJECT), 404, 40408)
        assert client.set_compatibility(level="FULL") == {"compatibility": "FULL"}
        assert client.get_config().compatibility_level.value == "FULL"
        assert client.set_compatibility(level="BACKWARD") == {"compatibility": "BACKWARD"}
        expect_error(lambda: client.set_compatibility(level="SIDEWAYS"), 422, 42203)

    @check
    def serialize_and_deserialize():
        ser = AvroSerializer(client, json.dumps(V2))
        record = {"id": "o-1", "qty": 3, "note": "gift"}
        data = ser(record, ctx)
        assert data[0] == 0 and int.from_bytes(data[1:5], "big") == state["v2"], data[:5]
        de = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
        assert de(data, ctx) == record
        state["message"] = (data, record)

    @check
    def meshlens_decodes_what_the_python_serializer_wrote():
        data, record = state["message"]
        out = subprocess.run(
            [args.bin, "avro", "decode", "--describe", "--registry", registry.url, "-"],
            input=data,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        assert json.loads(out.stdout) == record, out.stdout
        assert f"subject {SUBJECT} version 2" in out.stderr.decode(), out.stderr.decode()

    @check
    def an_old_producer_and_a_new_consumer():
        # Written with v1 (already registered, so no new version), read with v2 as reader.
        ser = AvroSerializer(client, json.dumps(V1), conf={"auto.register.schemas": False})
        data = ser({"id": "o-2", "qty": 5}, ctx)
        assert int.from_bytes(data[1:5], "big") == state["v1"]
        de = AvroDeserializer(client, json.dumps(V2))
        assert de(data, ctx) == {"id": "o-2", "qty": 5, "note": None}

    @check
    def use_latest_version():
        # A fresh client: this one cached "latest" = v1 earlier (the client's cache has no TTL).
        fresh = SchemaRegistryClient({"url": registry.url})
        ser = AvroSerializer(fresh, None, conf={"auto.register.schemas": False, "use.latest.version": True})
        data = ser({"id": "o-3", "qty": 1, "note": None}, ctx)
        assert int.from_bytes(data[1:5], "big") == state["v2"], (data, state)
        de = AvroDeserializer(fresh, conf={"use.latest.version": True})
        assert de(data, ctx) == {"id": "o-3", "qty": 1, "note": None}

    @check
    def lookup_only_serializer_refuses_an_unregistered_schema():
        other = dict(V2, fields=V2["fields"] + [{"name": "x", "type": "int", "default": 0}])
        ser = AvroSerializer(client, json.dumps(other), conf={"auto.register.schemas": False})
        expect_error(lambda: ser({"id": "o", "qty": 1, "note": None, "x": 1}, ctx), 404, 40403)

    @check
    def schema_references():
        client.register_schema("address-value", avro(ADDRESS))
        ref = SchemaReference("shop.Address", "address-value", 1)
        sid = client.register_schema("shipments-value", avro(SHIPMENT, [ref]))
        fetched = SchemaRegistryClient({"url": registry.url}).get_schema(sid)
        assert [(r.name, r.subject, r.version) for r in fetched.references] == [("shop.Address", "address-value", 1)]
        ser = AvroSerializer(client, avro(SHIPMENT, [ref]))
        shipment = {"order": "o-1", "to": {"city": "Lyon"}}
        sctx = SerializationContext("shipments", MessageField.VALUE)
        data = ser(shipment, sctx)
        de = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
        assert de(data, sctx) == shipment
        assert client.get_referenced_by("address-value", 1) == [sid]
        expect_error(lambda: client.delete_subject("address-value"), 422, 42206)

    @check
    def schema_types():
        assert client.get_schema_types() == ["AVRO"]

    @check
    def soft_and_permanent_delete():
        assert client.delete_version("audit-value", 1) == 1
        expect_error(lambda: client.delete_version("audit-value", 1), 404, 40406)
        assert client.delete_version("audit-value", 1, permanent=True) == 1
        assert "audit-value" not in client.get_subjects()
        expect_error(lambda: client.delete_subject(SUBJECT, permanent=True), 404, 40405)
        assert client.delete_subject(SUBJECT) == [1, 2]
        expect_error(lambda: client.delete_subject(SUBJECT), 404, 40404)
        assert SUBJECT not in client.get_subjects()
        assert client.delete_subject(SUBJECT, permanent=True) == [1, 2]
        expect_error(lambda: client.get_versions(SUBJECT), 404, 40401)
        # Ids are never reused: a new schema gets a fresh id.
        sid = client.register_schema("fresh-value", avro({"type": "fixed", "name": "f", "size": 4}))
        assert sid > state["v2"], (sid, state["v2"])

    passed = failed = 0
    try:
        for fn in checks:
            try:
                fn()
                passed += 1
                print(f"PASS {fn.__name__}")
            except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                failed += 1
                print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
                traceback.print_exc(file=sys.stderr)
    finally:
        registry.stop()
        tmp.cleanup()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
