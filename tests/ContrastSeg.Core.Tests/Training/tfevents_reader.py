#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, written from the TFRecord and tensorflow.Event specs with the
standard library only (no TensorFlow, TensorBoard or protobuf package), so the test does not read the kit's files with
the kit's own code.

Usage: tfevents_reader.py FILE
Prints one JSON object: {"now": time.time(), "events": [{"wall_time", "step", "file_version", "values": [[tag, v]]}]}.
Exits 1 with a message on a bad length or data CRC, a truncated record or an unexpected protobuf wire type.
"""
import json
import struct
import sys
import time


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            fail("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf):
    """(field number, wire type, value) of one protobuf message: ints for varints, bytes for the rest."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            fail("unexpected wire type %d (field %d)" % (wire, number))
        if i > len(buf):
            fail("field %d runs past its message" % number)
        yield number, wire, value


def event(data):
    e = {"wall_time": None, "step": 0, "file_version": None, "values": []}
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            e["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            e["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            e["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:
            for n, w, v in fields(value):
                if n != 1 or w != 2:
                    continue
                tag, simple = None, None
                for vn, vw, vv in fields(v):
                    if vn == 1 and vw == 2:
                        tag = vv.decode("utf-8")
                    elif vn == 2 and vw == 5:
                        simple = struct.unpack("<f", vv)[0]
                e["values"].append([tag, simple])
    return e


def records(blob):
    i = 0
    while i < len(blob):
        if i + 12 > len(blob):
            fail("truncated record header at byte %d" % i)
        header = blob[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[i + 8:i + 12])
        if masked_crc32c(header) != length_crc:
            fail("bad length CRC at byte %d" % i)
        data = blob[i + 12:i + 12 + length]
        if len(data) != length or i + 16 + length > len(blob):
            fail("truncated record at byte %d" % i)
        (data_crc,) = struct.unpack("<I", blob[i + 12 + length:i + 16 + length])
        if masked_crc32c(data) != data_crc:
            fail("bad data CRC at byte %d" % i)
        yield data
        i += 16 + length


def main():
    if len(sys.argv) != 2:
        fail("usage: tfevents_reader.py FILE")
    with open(sys.argv[1], "rb") as f:
        blob = f.read()
    print(json.dumps({"now": time.time(), "events": [event(r) for r in records(blob)]}))


if __name__ == "__main__":
    main()
