#!/usr/bin/env python3
"""An outsider's verifier of one tenant's audit data, written from the contract alone.

Sources: docs/audit-ledger.md ("Tenant chains", "Signed checkpoints", "The checkpoint, format 2",
"Key rotation", "Tenant proofs", "Rollback and split views") and the OpenAPI document
(src/client/openapi.json). It shares no code with src/ledger: it is what a tenant's auditor would
write, and test/integration/outsider-verifier.test.ts runs it beside `service-fs verify-tenant` on
the same files. Where the documents were not enough, the comment says which golden vector
(test/fixtures/ledger-golden-vectors.ts) settled it.

Usage:
  verify_tenant.py --pin-key KEY --entries FILE... --proof FILE [--prior-proof FILE [--checkpoints FILE...]]

KEY is the JSON of GET /.well-known/vm-tenant/ledger-checkpoint-key or a PEM. Entries and
checkpoint files hold pages as the API answered them (one page, an array of items, or JSON Lines of
pages). Prints "ok: ..." lines, or one "bad: <defect>: ..." line per finding (defects: gap, rewrite,
truncation, forged_insert, fork, forged_checkpoint, bad_proof, rollback) and exits 1; exit 2 on bad
arguments or unreadable input. Python 3 standard library and `cryptography` (Ed25519) only.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO_HASH = "0" * 64
CHECKPOINT_DOMAIN = {1: "vm-tenant ledger checkpoint v1\n", 2: "vm-tenant ledger checkpoint v2\n"}
ROTATION_DOMAIN = "vm-tenant ledger key rotation v2\n"
TENANT_HEAD_DOMAIN = b"vm-tenant tenant head v1\n"
CHECKPOINT_MEMBERS = {
    1: ("v", "head_digest", "tree_size", "root", "signed_at", "key_id"),
    2: ("v", "head_digest", "entries_digest", "tree_size", "root", "previous", "signed_at", "key_id"),
}
ROTATION_MEMBERS = ("v", "type", "previous", "key_id", "new_key_id", "signed_at")


class InputError(Exception):
    """Bad arguments or unreadable input: exit 2."""


# ---------------------------------------------------------------- RFC 8785 (JCS)

def _es_number(value: int | float) -> str:
    """ECMAScript Number::toString of a double (RFC 8785 section 3.2.2.3)."""
    x = float(value)  # JSON numbers are IEEE 754 doubles to the producer (JavaScript)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("JCS cannot represent NaN or Infinity")
    if x == 0:
        return "0"  # -0 too
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # Python's repr is the shortest round-tripping decimal, as ECMAScript's
    mantissa, _, exp = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    if frac_part == "0":
        frac_part = ""
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    # value = 0.d1d2...dk * 10^n
    n = len(int_part) + int(exp or 0) - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


def _jcs_string(s: str) -> str:
    # json.dumps with ensure_ascii=False escapes exactly ", \ and U+0000..U+001F (\b \t \n \f \r
    # short, the rest \u00xx in lower case): RFC 8785 section 3.2.2.2.
    return json.dumps(s, ensure_ascii=False)


def jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _es_number(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # by UTF-16 code units
        return "{" + ",".join(_jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise ValueError(f"JCS cannot represent {type(value).__name__}")


def jcs_bytes(value: Any) -> bytes:
    return jcs(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- keys

@dataclass(frozen=True)
class Key:
    key_id: str
    public: Ed25519PublicKey

    def verifies(self, signature_b64: Any, message: bytes) -> bool:
        if not isinstance(signature_b64, str):
            return False
        try:
            # Signatures are standard base64 (the golden vectors show it; the docs do not say).
            signature = base64.b64decode(signature_b64, validate=True)
            self.public.verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False


def key_from_pem(pem: str) -> Key:
    public = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(public, Ed25519PublicKey):
        raise InputError("the key is not an Ed25519 public key")
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Key(sha256_hex(der), public)


def load_pinned_key(path: str) -> Key:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as error:
        raise InputError(f"cannot read the pinned key {path}: {error}") from error
    try:
        if text.lstrip().startswith("{"):
            doc = json.loads(text)
            if doc.get("algorithm") != "Ed25519" or not isinstance(doc.get("public_key_pem"), str):
                raise InputError(f"{path}: not the JSON of the checkpoint key route")
            key = key_from_pem(doc["public_key_pem"])
            if doc.get("key_id") != key.key_id:
                raise InputError(f"{path}: key_id {doc.get('key_id')} is not the SHA-256 of the key's SPKI DER ({key.key_id})")
            return key
        return key_from_pem(text)
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: not an Ed25519 public key: {error}") from error


# ---------------------------------------------------------------- input files

def load_items(path: str) -> list[dict]:
    """A page ({items, next_cursor}), an array of items, or JSON Lines of either."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error}") from error
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: neither JSON nor JSON Lines: {error}") from error
    items: list[dict] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            items.extend(doc["items"])
        elif isinstance(doc, list):
            items.extend(doc)
        elif isinstance(doc, dict):
            items.append(doc)
        else:
            raise InputError(f"{path}: not a page, an array or an item")
    return items


def load_json(path: str) -> dict:
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a JSON object")
    return doc


# ---------------------------------------------------------------- findings

@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    bad_count: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"ok: {text}")

    def warn(self, text: str) -> None:
        self.lines.append(f"warning: {text}")

    def bad(self, defect: str, text: str) -> None:
        self.bad_count += 1
        self.lines.append(f"bad: {defect}: {text}")


# ---------------------------------------------------------------- the tenant chain

def tenant_hashed_object(entry: dict) -> dict:
    """The object a tenant_hash covers ("Tenant chains"): the hash chain's members with the member
    `tenant_seq` (not `seq`) holding the tenant's sequence as a decimal string (the golden vector
    GOLDEN_TENANT_CHAIN settled the name), and source_ip/user_agent null for the operator's actions.
    The API nests actor and source; the hashed object is flat."""
    actor = entry.get("actor") or {}
    source = entry.get("source") or {}
    operator = actor.get("scope") == "service:admin"
    return {
        "tenant_seq": str(entry["tenant_seq"]),
        "event_id": entry["event_id"],
        "tenant_id": entry.get("tenant_id"),
        "vm_id": entry.get("vm_id"),
        "event_type": entry["event_type"],
        "occurred_at": normalise_time(entry["occurred_at"]),
        "actor_token_id": actor.get("token_id"),
        "actor_scope": actor.get("scope"),
        "source_ip": None if operator else source.get("ip"),
        "user_agent": None if operator else source.get("user_agent"),
        "request_id": source.get("request_id"),
        "details": entry.get("details"),
    }


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def normalise_time(text: str) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-06-14T09:00:00.000Z."""
    moment = parse_time(text)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def tenant_hash(prev: str, entry: dict) -> str:
    return sha256_hex(prev.encode("ascii") + b"\n" + jcs_bytes(tenant_hashed_object(entry)))


def check_chain(entries: list[dict], report: Report) -> tuple[dict[int, dict], str | None]:
    """Recomputes each tenant_hash and each link, from tenant_seq 1. Returns the entries by
    tenant_seq and the tenant id."""
    by_seq: dict[int, dict] = {}
    tenants = {entry.get("tenant_id") for entry in entries}
    if len(tenants) > 1:
        report.bad("rewrite", f"the entries belong to several tenants: {sorted(map(str, tenants))}")
    tenant = next(iter(tenants)) if tenants else None
    for entry in entries:
        seq = int(entry["tenant_seq"])
        if seq in by_seq and by_seq[seq] != entry:
            report.bad("rewrite", f"tenant_seq {seq} appears twice with different contents")
        by_seq[seq] = entry
    defects_before = report.bad_count
    expected = 1
    prev_hash = ZERO_HASH
    for seq in sorted(by_seq):
        entry = by_seq[seq]
        if seq != expected:
            report.bad("gap", f"tenant_seq {expected}..{seq - 1} missing: the entries jump from tenant_seq {expected - 1} to {seq}")
        elif entry.get("tenant_prev_hash") != prev_hash:
            report.bad("rewrite", f"tenant_seq {seq}: tenant_prev_hash {entry.get('tenant_prev_hash')} is not the tenant_hash {prev_hash} of tenant_seq {seq - 1}")
        recomputed = tenant_hash(entry.get("tenant_prev_hash") or "", entry)
        if recomputed != entry.get("tenant_hash"):
            report.bad("rewrite", f"tenant_seq {seq}: its fields hash to {recomputed}, not to its tenant_hash {entry.get('tenant_hash')}")
        prev_hash = entry.get("tenant_hash") or ""
        expected = seq + 1
    if report.bad_count == defects_before:
        report.ok(f"{len(by_seq)} entries of tenant {tenant} link and recompute")
    return by_seq, tenant


# ---------------------------------------------------------------- checkpoints and links

def checkpoint_statement(checkpoint: dict) -> tuple[dict, str] | None:
    """The signed statement (the members of its format) and its domain line, or None."""
    version = checkpoint.get("v")
    if version not in CHECKPOINT_MEMBERS or "type" in checkpoint:
        return None
    members = CHECKPOINT_MEMBERS[version]
    if any(member not in checkpoint for member in members):
        return None
    return {member: checkpoint[member] for member in members}, CHECKPOINT_DOMAIN[version]


def signed_bytes(statement: dict, domain: str) -> bytes:
    return domain.encode("ascii") + jcs_bytes(statement)


def link_hash(link: dict) -> str | None:
    """SHA-256 (hex) of a link's signed bytes: its checkpoint id."""
    if link.get("type") == "key_rotation":
        return sha256_hex(signed_bytes({m: link.get(m) for m in ROTATION_MEMBERS}, ROTATION_DOMAIN))
    found = checkpoint_statement(link)
    return sha256_hex(signed_bytes(*found)) if found else None


def verify_link(link: dict, key: Key) -> tuple[bool, Key, str]:
    """Whether the link is signed by the series' key at its place; the key in force after it."""
    if link.get("type") == "key_rotation":
        if any(m not in link for m in (*ROTATION_MEMBERS, "signature", "new_key_signature", "new_public_key_pem")):
            return False, key, "a key rotation without all its members"
        message = signed_bytes({m: link[m] for m in ROTATION_MEMBERS}, ROTATION_DOMAIN)
        if link["key_id"] != key.key_id or not key.verifies(link["signature"], message):
            return False, key, f"a key rotation not signed by the series' key {key.key_id[:16]}"
        if "public_key_pem" in link:
            try:
                if key_from_pem(link["public_key_pem"]).key_id != key.key_id:
                    return False, key, "a key rotation whose public_key_pem is not its key_id"
            except (ValueError, InputError):
                return False, key, "a key rotation whose public_key_pem is not an Ed25519 key"
        try:
            new_key = key_from_pem(link["new_public_key_pem"])
        except (ValueError, InputError):
            return False, key, "a key rotation whose new_public_key_pem is not an Ed25519 key"
        if new_key.key_id != link["new_key_id"]:
            return False, key, "a key rotation whose new_public_key_pem is not its new_key_id"
        if not new_key.verifies(link["new_key_signature"], message):
            return False, key, "a key rotation not co-signed by the new key"
        return True, new_key, "a key rotation"
    found = checkpoint_statement(link)
    if not found:
        return False, key, "not a checkpoint statement"
    statement, domain = found
    if statement["key_id"] != key.key_id or not key.verifies(link.get("signature"), signed_bytes(statement, domain)):
        return False, key, f"a checkpoint not signed by the series' key {key.key_id[:16]}"
    return True, key, "a checkpoint"


# ---------------------------------------------------------------- proofs

def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tenant_leaf(tenant_id: str | None, tenant_seq: str, head_hash: str) -> bytes:
    """SHA-256(0x00 || "vm-tenant tenant head v1\\n" || JCS({tenant_id, tenant_seq, tenant_hash})),
    tenant_seq a decimal string (the golden checkpoint's root settled it), tenant_id null for the
    platform chain."""
    body = jcs_bytes({"tenant_id": tenant_id, "tenant_seq": str(tenant_seq), "tenant_hash": head_hash})
    return hashlib.sha256(b"\x00" + TENANT_HEAD_DOMAIN + body).digest()


def root_from_inclusion_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2."""
    if index < 0 or index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


@dataclass
class CheckedProof:
    name: str
    proof: dict
    statement: dict
    checkpoint_id: str
    signed_at: datetime
    tenant_seq: int


def check_proof(name: str, proof: dict, key: Key, tenant: str | None, report: Report) -> CheckedProof | None:
    """Signature (forged_checkpoint), checkpoint id and inclusion path (bad_proof)."""
    checkpoint = proof.get("checkpoint")
    found = checkpoint_statement(checkpoint) if isinstance(checkpoint, dict) else None
    if not found:
        report.bad("bad_proof", f"{name}: its checkpoint is not a format 1 or 2 statement")
        return None
    statement, domain = found
    signed_at = statement["signed_at"]
    message = signed_bytes(statement, domain)
    if statement["key_id"] != key.key_id or not key.verifies(checkpoint.get("signature"), message):
        report.bad("forged_checkpoint", f"{name}: the checkpoint signed at {signed_at} is not signed by the key {key.key_id[:16]} (it names key {str(statement['key_id'])[:16]})")
        return None
    checkpoint_id = sha256_hex(message)  # what the series names it by, whatever the proof says
    sound = True
    if proof.get("checkpoint_id") != checkpoint_id:
        # Not fatal: the signed statement is what counts; but the id is the cursor of the next round.
        report.bad("bad_proof", f"{name}: checkpoint_id {proof.get('checkpoint_id')} is not the link hash of its checkpoint ({checkpoint_id})")
    if tenant is not None and proof.get("tenant_id") != tenant:
        report.bad("bad_proof", f"{name}: it proves tenant {proof.get('tenant_id')}, the entries are tenant {tenant}'s")
        sound = False
    try:
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if any(len(h) != 32 for h in path):
            raise ValueError("not a SHA-256")
        leaf = tenant_leaf(proof.get("tenant_id"), proof["tenant_seq"], proof["tenant_hash"])
        size = int(proof["tree_size"])
        root = root_from_inclusion_path(leaf, int(proof["leaf_index"]), size, path)
    except (KeyError, TypeError, ValueError) as error:
        report.bad("bad_proof", f"{name}: unreadable proof: {error}")
        return None
    if size != statement["tree_size"]:
        report.bad("bad_proof", f"{name}: tree_size {size} is not the signed tree_size {statement['tree_size']}")
        sound = False
    if root is None or root.hex() != statement["root"]:
        report.bad("bad_proof", f"{name}: the audit path does not lead from tenant_seq {proof['tenant_seq']}'s leaf to the signed root of the checkpoint signed at {signed_at}")
        sound = False
    if not sound:
        return None
    return CheckedProof(name, proof, statement, checkpoint_id, parse_time(signed_at), int(proof["tenant_seq"]))


def check_head_held(checked: CheckedProof, by_seq: dict[int, dict], report: Report) -> bool:
    """The entries still hold the proved head: truncation, rewrite, forged_insert."""
    proof, seq = checked.proof, checked.tenant_seq
    at = f"the checkpoint signed at {checked.statement['signed_at']}"
    entry = by_seq.get(seq)
    if entry and entry.get("tenant_hash") == proof["tenant_hash"] and entry.get("event_id") == proof["event_id"]:
        return True
    moved = next((s for s, e in by_seq.items() if e.get("tenant_hash") == proof["tenant_hash"] or e.get("event_id") == proof["event_id"]), None)
    last = max(by_seq, default=0)
    if moved is not None and moved < seq:
        report.bad("truncation", f"{checked.name}: the head {at} signed at tenant_seq {seq} is now at tenant_seq {moved}")
    elif moved is not None and moved > seq:
        report.bad("forged_insert", f"{checked.name}: the head {at} signed at tenant_seq {seq} is now at tenant_seq {moved}: entries were inserted before it")
    elif last < seq:
        report.bad("truncation", f"{checked.name}: the entries end at tenant_seq {last}, but {at} covers tenant_seq {seq}")
    else:
        report.bad("rewrite", f"{checked.name}: tenant_seq {seq} holds another entry than the one {at} signed")
    return False


def walk_links(prior: CheckedProof, target_id: str, target_signed_at: str, links: list[dict], pinned: Key, report: Report) -> Key | None:
    """Follows the series from the prior proof's checkpoint (signed by the pinned key): each link
    names the one before it (`previous` = its link hash) and is signed by the series' key at that
    point; a rotation hands over to its co-signing new key. Returns the key in force at the target
    checkpoint when such a chain reaches it, else None (after naming a fork)."""
    children: dict[str, list[dict]] = {}
    for link in links:
        previous = link.get("previous")
        if isinstance(previous, str):
            children.setdefault(previous, []).append(link)
    key_after = {prior.checkpoint_id: pinned}
    depth = {prior.checkpoint_id: 0}
    frontier = [prior.checkpoint_id]
    while frontier:
        current = frontier.pop()
        followers: dict[str, Key] = {}
        for link in children.get(current, []):
            lid = link_hash(link)
            valid, key, what = verify_link(link, key_after[current])
            if not valid or lid is None:
                report.bad("forged_checkpoint", f"a link signed at {link.get('signed_at')} follows {current[:16]} but is {what}")
                continue
            followers[lid] = key
        if len(followers) > 1:
            report.bad("fork", f"{len(followers)} validly signed links follow the link {current[:16]}: two histories")
        for lid, key in followers.items():
            if lid not in key_after:
                key_after[lid] = key
                depth[lid] = depth[current] + 1
                frontier.append(lid)
    if target_id not in key_after:
        report.bad("fork", f"no chain of signed links leads from the prior proof's checkpoint (signed at {prior.statement['signed_at']}) to the one shown now (signed at {target_signed_at})")
        return None
    count = depth[target_id]
    report.ok(f"the checkpoint signed at {target_signed_at} extends the prior proof's (signed at {prior.statement['signed_at']}) by {count} signed link{'s' if count != 1 else ''}")
    return key_after[target_id]


def run(args: argparse.Namespace) -> Report:
    report = Report()
    pinned = load_pinned_key(args.pin_key)
    entries = [item for path in args.entries for item in load_items(path)]
    by_seq, tenant = check_chain(entries, report)
    newest_proof = load_json(args.proof)
    prior_proof = load_json(args.prior_proof) if args.prior_proof else None
    links = [item for path in (args.checkpoints or []) for item in load_items(path)]

    prior = check_proof("the prior proof", prior_proof, pinned, tenant, report) if prior_proof else None
    newest_key = pinned
    if prior:
        # Against the prior proof, before the newest proof's signature: which key signs the newest
        # checkpoint is what the links say (the pinned key, or one a rotation handed over to).
        last = max(by_seq, default=0)
        if last < prior.tenant_seq:
            report.bad("rollback", f"the entries end at tenant_seq {last}, but the prior proof covered tenant_seq {prior.tenant_seq}: entries were withheld or cut off")
        checkpoint = newest_proof.get("checkpoint")
        found = checkpoint_statement(checkpoint) if isinstance(checkpoint, dict) else None
        if found:
            statement = found[0]
            target_id = sha256_hex(signed_bytes(*found))
            newest_seq = int(newest_proof.get("tenant_seq", 0))
            if newest_seq < prior.tenant_seq:
                report.bad("rollback", f"the newest proof (tenant_seq {newest_seq}) covers less than the prior proof (tenant_seq {prior.tenant_seq})")
            if newest_seq == prior.tenant_seq and newest_proof.get("tenant_hash") != prior.proof["tenant_hash"]:
                report.bad("fork", f"two proofs give tenant_seq {newest_seq} two hashes")
            if parse_time(statement["signed_at"]) < prior.signed_at:
                report.bad("rollback", f"the checkpoint shown now (signed at {statement['signed_at']}) is older than the prior proof's (signed at {prior.statement['signed_at']})")
            elif target_id == prior.checkpoint_id:
                report.ok("the newest proof is of the prior proof's checkpoint")
            elif not args.checkpoints:
                # The synopsis makes --checkpoints optional (as service-fs verify-tenant does).
                report.warn("no --checkpoints given: the newest checkpoint is compared with the prior one by time only, not shown to extend it")
            else:
                newest_key = walk_links(prior, target_id, statement["signed_at"], links, pinned, report) or pinned
    newest = check_proof("the newest proof", newest_proof, newest_key, tenant, report)
    held = [check_head_held(checked, by_seq, report) for checked in (prior, newest) if checked]
    if newest and all(held):
        report.ok(f"the checkpoint signed at {newest.statement['signed_at']} (key {newest.statement['key_id'][:16]}) proves tenant {tenant}'s head at tenant_seq {newest.tenant_seq}, and the entries hold it")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="verify_tenant.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pin-key", required=True)
    parser.add_argument("--entries", action="append", required=True)
    parser.add_argument("--proof", required=True)
    parser.add_argument("--prior-proof")
    parser.add_argument("--checkpoints", action="append")
    try:
        args = parser.parse_args(argv)
        report = run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as error:
        # Input that does not have the documented shape is not a verdict on the ledger.
        print(f"error: malformed input: {error!r}", file=sys.stderr)
        return 2
    print("\n".join(report.lines))
    return 1 if report.bad_count else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
