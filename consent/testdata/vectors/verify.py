#!/usr/bin/env python3
"""Independent check of the medwallet ledger test vectors.

Written from docs/format.md, sharing no code with the Go implementation:
a minimal canonical-CBOR decoder and encoder, base58 peer-ID decoding, and
Ed25519 from the `cryptography` package. Usage:

    python3 verify.py [feeds.json] [requests.json]

Exits 0 when every case gets the outcome the vector file states.
"""
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ENTRY_CTX = b"medwallet ledger entry v1\n"
REQUEST_CTX = b"medwallet access request v1\n"
KINDS = {1, 2, 3, 4, 5, 6, 7, 8, 9}
# Body keys of the kinds added with emergency access: (required, optional).
BODY_KEYS = {
    7: ({1, 2, 3, 4, 6, 7}, {5}),  # credential
    8: ({1, 2, 3}, set()),  # break-glass
    9: ({1, 2}, {3}),  # review
}


class Bad(Exception):
    def __init__(self, name, why=""):
        super().__init__(f"{name}: {why}")
        self.name = name


def head(major, n):
    m = major << 5
    if n < 24:
        return bytes([m | n])
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([m | ai]) + n.to_bytes(size, "big")
    raise ValueError(n)


def encode(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(encode(x) for x in v)
    if isinstance(v, dict):
        items = sorted((encode(k), encode(x)) for k, x in v.items())
        return head(5, len(v)) + b"".join(k + x for k, x in items)
    raise TypeError(type(v))


def decode(b, i=0):
    """Decode one item at b[i:]; return (value, next index)."""
    ib = b[i]
    major, ai = ib >> 5, ib & 31
    i += 1
    if major == 7:
        if ai in (20, 21):
            return ai == 21, i
        raise Bad("malformed", "simple or float value")
    if ai < 24:
        n = ai
    elif ai <= 27:
        size = 1 << (ai - 24)
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    else:
        raise Bad("malformed", "indefinite length")
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        v = b[i:i + n]
        if len(v) != n:
            raise Bad("malformed", "truncated")
        return (v if major == 2 else v.decode()), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = decode(b, i)
            out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = decode(b, i)
            x, i = decode(b, i)
            if k in out:
                raise Bad("malformed", "duplicate key")
            out[k] = x
        return out, i
    raise Bad("malformed", "tag")


def decode_canonical(b):
    v, i = decode(b)
    if i != len(b):
        raise Bad("malformed", "trailing bytes")
    if encode(v) != b:
        raise Bad("not-canonical")
    return v


def public_key(peer_id):
    n = 0
    for c in peer_id:
        if c not in B58:
            raise Bad("malformed", "author is not base58")
        n = n * 58 + B58.index(c)
    zeros = len(peer_id) - len(peer_id.lstrip("1"))  # each leading "1" is a zero byte
    raw = bytes(zeros) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    # identity multihash (0x00, 36) of the protobuf PublicKey {1: Ed25519, 2: 32 bytes}
    if raw[:6] != bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) or len(raw) != 38:
        raise Bad("malformed", "author is not an Ed25519 peer ID")
    return Ed25519PublicKey.from_public_bytes(raw[6:])


def verify_sig(pub, msg, sig):
    try:
        pub.verify(sig, msg)
    except InvalidSignature:
        raise Bad("bad-signature")


def check_entry(b):
    e = decode_canonical(b)
    if not isinstance(e, dict) or set(e) - {1, 2, 3, 4, 5, 6, 7} or set(e) < {1, 2, 3, 4, 5, 6}:
        raise Bad("malformed", "entry keys")
    pub = public_key(e[1])
    if e[2] < 1 or len(e[3]) != 32 or (e[2] == 1) != (e[3] == bytes(32)):
        raise Bad("malformed", "seq or prev")
    if e[5] not in KINDS:
        raise Bad("unknown-kind")
    body = decode_canonical(e[6])
    if not isinstance(body, dict):
        raise Bad("malformed", "body")
    if e[5] in BODY_KEYS:
        required, optional = BODY_KEYS[e[5]]
        if not required <= set(body) <= required | optional:
            raise Bad("malformed", "body keys")
        if e[5] == 8 and len(body[2]) != 32:
            raise Bad("malformed", "break-glass grant hash")
        if e[5] == 9 and (len(body[1]) != 32 or body[2] not in ("ok", "dispute")):
            raise Bad("malformed", "review")
    unsigned = {k: v for k, v in e.items() if k != 7}
    verify_sig(pub, ENTRY_CTX + encode(unsigned), e.get(7, b""))
    return e, hashlib.sha256(b).digest()


def check_feed(author, hexes):
    entries = []
    for h in hexes:
        e, digest = check_entry(bytes.fromhex(h))
        if e[1] != author:
            raise Bad("wrong-author")
        entries.append((e, digest))
    seqs = {}
    for e, d in entries:
        if e[2] in seqs:
            raise Bad("duplicate" if seqs[e[2]] == d else "equivocation")
        seqs[e[2]] = d
    if sorted(seqs) == list(range(1, len(entries) + 1)) and [e[2] for e, _ in entries] != sorted(seqs):
        raise Bad("reordered")
    prev, seq, t = bytes(32), 0, 0
    for e, d in entries:
        if e[2] != seq + 1:
            raise Bad("gap")
        if e[3] != prev:
            raise Bad("wrong-prev")
        if e[4] < t:
            raise Bad("time-backwards")
        prev, seq, t = d, e[2], e[4]
    return seq, prev.hex()


def check_request(b):
    r = decode_canonical(b)
    # key 9 (the break-glass entry's hash) is optional
    if not set(range(1, 9)) <= set(r) <= set(range(1, 10)) or not 16 <= len(r[7]) <= 64:
        raise Bad("malformed", "request fields")
    if 9 in r and len(r[9]) != 32:
        raise Bad("malformed", "break-glass hash")
    public_key(r[2])
    unsigned = {k: v for k, v in r.items() if k != 8}
    verify_sig(public_key(r[1]), REQUEST_CTX + encode(unsigned), r[8])


# Cases whose expected error needs more than this checker knows (SMART
# scope normalisation) are only checked to be refused by the Go side.
GO_ONLY = {"bad-grant-body"}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    feeds = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "feeds.json")
    reqs = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "requests.json")
    failures = 0
    for c in json.load(open(feeds))["cases"]:
        try:
            seq, h = check_feed(c["feed"], c["entries"])
            head = c.get("head") or {}
            got = None if (seq, h) == (head.get("seq"), head.get("hash")) else "accepted"
        except Bad as err:
            got = err.name
        want = None if c["valid"] else c["error"]
        if c["name"] in GO_ONLY:
            continue
        if got != want:
            failures += 1
            print(f"FAIL feeds/{c['name']}: got {got}, want {want}")
    for c in json.load(open(reqs))["cases"]:
        try:
            check_request(bytes.fromhex(c["request"]))
            got = None
        except Bad as err:
            got = err.name
        want = None if c["valid"] else c["error"]
        if got != want:
            failures += 1
            print(f"FAIL requests/{c['name']}: got {got}, want {want}")
    print("ok" if failures == 0 else f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
