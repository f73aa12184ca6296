"""``chaosdrill validate-status``: check /api/v1/status payloads against the status contract.

Flag-compatible with the checklist's ``tools/validate_status.py``. Exit codes:
0 every payload valid, 1 any finding (or registry drift in the schema/manifest),
2 set-up error (missing file, glob matching nothing, invalid JSON, unreachable URL,
unusable schema or manifest). Set-up errors are one line each on stderr.

Every payload is read strictly (:func:`pytest_chaosdrill.statusread.read_status`): a body that is
JSON but hostile (duplicate keys, NaN/Infinity, not an object, too large, too deep) is a
``[PARSE]`` finding of that file (exit 1); a body that is not JSON at all stays a set-up error.
URLs are fetched without following redirects, without environment proxies, and only from a
loopback host unless ``--allow-remote`` is given.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import zlib
from typing import Any, TextIO

from ..contract import Contract, ContractLoadError, Finding, findings_by_tag
from ..statusread import DEFAULT_MAX_BYTES, StatusRead, parse_status, read_status

EXIT_OK, EXIT_INVALID, EXIT_SETUP = 0, 1, 2
_GLOB_CHARS = set("*?[")


class SetupError(Exception):
    """A problem with the inputs or the contract files, not with a payload (exit 2)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the validate-status options to ``parser``."""
    # action="extend" with nargs="+": repeatable, and an unquoted glob the shell expanded still works.
    parser.add_argument("--file", action="extend", nargs="+", default=[], metavar="PATH",
                        help="status payload JSON file; repeatable; quoted globs ('dir/*.json') are expanded")
    parser.add_argument("--url", action="extend", nargs="+", default=[], metavar="URL",
                        help="fetch the payload from a live /api/v1/status endpoint; repeatable")
    parser.add_argument("--timeline", action="extend", nargs="+", default=[], metavar="FILE.jsonl[.gz]",
                        help="JSON Lines file of payloads or sample records {'status': ..., 'i', 'mono', "
                             "'utc', 'error'}, gzip-compressed when it ends .gz (an evidence folder's timeline.jsonl.gz); repeatable")
    parser.add_argument("--schema", default=None, help="JSON Schema file (default: bundled min schema)")
    parser.add_argument("--manifest", default=None, help="reason registry manifest (default: bundled)")
    parser.add_argument("--strict", action="store_true",
                        help="also report keys the schema does not define ([STRICT]); for fixtures")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="timeout for --url fetches (default 5)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow --url hosts that are not loopback (default: loopback only)")


class Result:
    """The verdict for one input (a file, a URL or a whole timeline)."""

    __slots__ = ("source", "kind", "findings", "samples", "failing", "first_failure")

    def __init__(self, source: str, kind: str, findings: list[Finding] | None = None, samples: int = 0,
                 failing: int = 0, first_failure: dict[str, Any] | None = None) -> None:
        self.source = source
        self.kind = kind
        self.findings: list[Finding] = [] if findings is None else findings
        self.samples = samples
        self.failing = failing
        self.first_failure = first_failure

    @property
    def ok(self) -> bool:
        return not self.findings and not self.failing

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "kind": self.kind, "valid": self.ok,
                               "findings": [f.as_dict() for f in self.findings]}
        if self.kind == "timeline":
            out.update(samples=self.samples, failing_samples=self.failing, first_failure=self.first_failure)
        return out


def _glob(pattern: str) -> list[str]:
    """``sorted(glob.glob(pattern))``; a pattern whose only magic is in its last part is listed directly.

    ``dir/*.json`` over thousands of files is the common case: one ``scandir`` and one compiled
    regex beat glob's per-name work. Same rules as glob there: hidden names need a leading dot.
    """
    head, tail = os.path.split(pattern)
    if "**" in pattern or _GLOB_CHARS & set(head) or not tail:
        import glob

        return sorted(glob.glob(pattern, recursive=True))
    hidden_ok = tail.startswith(".")
    suffix = tail[1:]
    try:
        if tail[0] == "*" and not _GLOB_CHARS & set(suffix) and os.path.normcase("A") == "A":
            # "*.json" on a case-sensitive system: fnmatch's regex would say exactly ``endswith``.
            names = [n for n in os.listdir(head or ".") if n.endswith(suffix) and (hidden_ok or n[0] != ".")]
        else:
            import fnmatch
            import re

            match = re.compile(fnmatch.translate(os.path.normcase(tail))).match
            with os.scandir(head or ".") as it:
                names = [e.name for e in it if (hidden_ok or e.name[0] != ".") and match(os.path.normcase(e.name))]
    except OSError:
        return []
    names.sort()
    # Every name gets the same prefix, so sorting the names sorts the joined paths.
    prefix = os.path.join(head, "") if head else ""
    return [prefix + n for n in names]


def _expand_files(patterns: list[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            matches = _glob(pattern)
            if not matches:
                raise SetupError(f"--file {pattern!r}: glob matched no file")
            paths.extend(matches)
        else:
            paths.append(pattern)
    return paths


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read_bytes(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``: os-level calls, no file object (thousands of files)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise SetupError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SetupError(f"{path}: is a directory, not a JSON file") from None
    except OSError as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from None
    try:
        chunks = []
        size = 0
        # Start small and grow: a 1 MB read buffer per file (most are a few KB) goes through
        # mmap/munmap and page faults in the allocator, which cost more than the read itself.
        want = 1 << 16
        while size < limit:
            chunk = os.read(fd, min(want, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = min(want * 4, 1 << 20)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except IsADirectoryError:
        raise SetupError(f"{path}: is a directory, not a JSON file") from None
    except OSError as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from None
    finally:
        os.close(fd)


def _syntax_message(read: StatusRead) -> str:
    return read.findings[0].message.removeprefix("status body is ")


def _load_file(path: str) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The strict read of one payload file, as (payload or None, [PARSE] findings).

    A body that is not JSON at all is a set-up error.
    """
    payload, findings, syntax = parse_status(_read_bytes(path, DEFAULT_MAX_BYTES + 1))
    if syntax:
        raise SetupError(f"{path}: invalid JSON: {findings[0].message.removeprefix('status body is ')}")
    return payload, findings


def _fetch(url: str, timeout: float, allow_remote: bool = False) -> StatusRead:
    # urllib (stdlib) rather than requests: nothing extra to import for the common --file case.
    import urllib.error
    import urllib.request

    from ..guard import is_local_url

    if not url.startswith(("http://", "https://")):
        raise SetupError(f"{url}: only http:// and https:// URLs can be fetched")
    if not allow_remote and not is_local_url(url):
        raise SetupError(f"{url}: host is not loopback; pass --allow-remote to fetch a status from another host")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
            raise urllib.error.HTTPError(newurl, code, f"redirect to {headers.get('Location', newurl)!r} refused "
                                                       "(validate-status never follows redirects)", headers, fp)

    # No ProxyHandler from the environment: a proxy would carry the request off loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        req = urllib.request.Request(url, headers={"Accept": "application/json", "Accept-Encoding": "identity"})
        with opener.open(req, timeout=timeout) as resp:
            body = resp.read(DEFAULT_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SetupError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SetupError(f"{url}: unreachable: {reason}") from None
    read = read_status(body)
    if read.syntax:
        raise SetupError(f"{url}: response is not valid JSON: {_syntax_message(read)}")
    return read


def _is_sample_record(obj: Any) -> bool:
    """A sampler record wraps the payload under "status"; a bare payload has trading_mode instead."""
    return isinstance(obj, dict) and "status" in obj and "trading_mode" not in obj


def _check_timeline(path: str, contract: Contract, strict: bool) -> Result:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if str(path).endswith(".gz"):  # an evidence folder's timeline.jsonl.gz
            data = gzip.decompress(data)
        lines = data.splitlines()
    except FileNotFoundError:
        raise SetupError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from None
    result = Result(str(path), "timeline")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        # One level more than a bare payload: a sample record wraps it.
        read = read_status(line, max_depth=65)
        if read.syntax:
            raise SetupError(f"{path}:{lineno}: invalid JSON: {_syntax_message(read)}")
        index = result.samples
        result.samples += 1
        obj = read.payload
        if obj is None:
            findings = read.findings
        elif _is_sample_record(obj):
            index = obj.get("i", index)
            payload = obj["status"]
            if payload is None:
                error = obj.get("error") or "no payload recorded"
                findings = [Finding("SAMPLE", "$", f"status fetch failed: {error}")]
            else:
                findings = contract.check(payload, strict=strict)
        else:
            findings = contract.check(obj, strict=strict)
        if findings:
            result.failing += 1
            if result.first_failure is None:
                result.first_failure = {"line": lineno, "index": index,
                                        "findings": [f.as_dict() for f in findings]}
                result.findings = findings
    if result.samples == 0:
        raise SetupError(f"{path}: timeline has no samples")
    return result


def _text_lines(results: list[Result], registry: list[Finding], quiet: bool) -> list[str]:
    """The text report, as lines (written at once: thousands of print() calls cost more than checking)."""
    lines: list[str] = []
    add = lines.append
    if registry:
        add(f"FAIL contract files: {len(registry)} registry finding(s)")
        lines.extend(f"  {f}" for f in registry)
    for r in results:
        findings = r.findings
        if not findings and not r.failing:  # r.ok, without the property call (once per file)
            if not quiet:
                add(f"OK   {r.source} ({r.samples} samples)" if r.kind == "timeline" else f"OK   {r.source}")
            continue
        groups = findings_by_tag(findings)
        counts = ", ".join([f"{tag}: {len(fs)}" for tag, fs in groups.items()])
        if r.kind == "timeline" and r.first_failure is not None:
            ff = r.first_failure
            add(f"FAIL {r.source}: {r.failing} of {r.samples} samples invalid; first at line {ff['line']} "
                f"(sample {ff['index']}): {len(findings)} finding(s) ({counts})")
        else:
            add(f"FAIL {r.source}: {len(findings)} finding(s) ({counts})")
        for fs in groups.values():
            lines += [f"  [{f.tag}] {f.path}: {f.message}" for f in fs]
    return lines


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate every input named by ``args``; returns the exit code (0, 1 or 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    setup_errors: list[str] = []

    def setup(msg: str) -> None:
        setup_errors.append(msg)
        print(f"chaosdrill validate-status: error: {msg}", file=err)

    if not (args.file or args.url or args.timeline):
        setup("nothing to check: give --file, --url or --timeline")
        return EXIT_SETUP
    if args.timeout is not None and args.timeout <= 0:
        setup("--timeout must be a positive number of seconds")
        return EXIT_SETUP
    try:
        contract = Contract.load(args.schema, args.manifest)
    except ContractLoadError as exc:
        setup(str(exc))
        return EXIT_SETUP

    results: list[Result] = []
    try:
        files = _expand_files(args.file)
    except SetupError as exc:
        setup(str(exc))
        files = []
    check, strict = contract.check, args.strict
    add = results.append
    import gc

    # Parsed payloads hold no reference cycles: reference counting frees them, and the cyclic
    # collector's passes over thousands of short-lived dicts are pure overhead here.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            try:
                payload, findings = _load_file(path)
            except SetupError as exc:
                setup(str(exc))
                continue
            add(Result(path, "file", check(payload, strict=strict) if payload is not None else findings))
    finally:
        if gc_was_enabled:
            gc.enable()
    for url in args.url:
        try:
            read = _fetch(url, args.timeout, args.allow_remote)
        except SetupError as exc:
            setup(str(exc))
            continue
        results.append(Result(url, "url", check(read.payload, strict=strict) if read.payload is not None
                              else read.findings))
    for name in args.timeline:
        try:
            results.append(_check_timeline(name, contract, args.strict))
        except SetupError as exc:
            setup(str(exc))

    registry = contract.registry_findings
    invalid = sum(not r.ok for r in results)
    if args.format == "json":
        doc = {
            "valid": not registry and not invalid and not setup_errors,
            "schema": contract.schema_source, "manifest": contract.manifest_source,
            "contract_version": contract.contract_version, "strict": args.strict,
            "registry_findings": [f.as_dict() for f in registry],
            "results": [r.as_dict() for r in results if not (args.quiet and r.ok)],
            "setup_errors": setup_errors,
            "summary": {"checked": len(results), "valid": len(results) - invalid, "invalid": invalid},
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        lines = _text_lines(results, registry, args.quiet)
        lines.append(f"summary: {len(results)} checked, {len(results) - invalid} valid, {invalid} invalid"
                     + (f", {len(registry)} registry finding(s)" if registry else "")
                     + (f", {len(setup_errors)} set-up error(s)" if setup_errors else ""))
        out.write("\n".join(lines) + "\n")
    if setup_errors:
        return EXIT_SETUP
    return EXIT_INVALID if registry or invalid else EXIT_OK
