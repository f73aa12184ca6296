"""``chaosdrill validate-status``: check /api/v1/status payloads against the status contract.

Flag-compatible with the checklist's ``tools/validate_status.py``. Exit codes:
0 every payload valid, 1 any finding (or registry drift in the schema/manifest),
2 set-up error (missing file, glob matching nothing, invalid JSON, unreachable URL,
unusable schema or manifest). Set-up errors are one line each on stderr.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..contract import Contract, ContractLoadError, Finding, findings_by_tag

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
    parser.add_argument("--timeline", action="extend", nargs="+", default=[], metavar="FILE.jsonl",
                        help="JSON Lines file of payloads or sample records {'status': ..., 'i', 'mono', "
                             "'utc', 'error'}; repeatable")
    parser.add_argument("--schema", default=None, help="JSON Schema file (default: bundled min schema)")
    parser.add_argument("--manifest", default=None, help="reason registry manifest (default: bundled)")
    parser.add_argument("--strict", action="store_true",
                        help="also report keys the schema does not define ([STRICT]); for fixtures")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="timeout for --url fetches (default 5)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


@dataclass
class Result:
    """The verdict for one input (a file, a URL or a whole timeline)."""

    source: str
    kind: str
    findings: list[Finding] = field(default_factory=list)
    samples: int = 0
    failing: int = 0
    first_failure: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.findings and not self.failing

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "kind": self.kind, "valid": self.ok,
                               "findings": [f.as_dict() for f in self.findings]}
        if self.kind == "timeline":
            out.update(samples=self.samples, failing_samples=self.failing, first_failure=self.first_failure)
        return out


def _expand_files(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise SetupError(f"--file {pattern!r}: glob matched no file")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(Path(pattern))
    return paths


def _load_json_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SetupError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SetupError(f"{path}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SetupError(f"{path}: invalid JSON: {exc}") from None


def _fetch(url: str, timeout: float) -> Any:
    # urllib (stdlib) rather than requests: nothing extra to import for the common --file case.
    import urllib.error
    import urllib.request

    try:
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - user-given URL
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise SetupError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SetupError(f"{url}: unreachable: {reason}") from None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise SetupError(f"{url}: response is not valid JSON: {exc}") from None


def _is_sample_record(obj: Any) -> bool:
    """A sampler record wraps the payload under "status"; a bare payload has trading_mode instead."""
    return isinstance(obj, dict) and "status" in obj and "trading_mode" not in obj


def _check_timeline(path: Path, contract: Contract, strict: bool) -> Result:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SetupError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: cannot read: {exc}") from None
    result = Result(str(path), "timeline")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise SetupError(f"{path}:{lineno}: invalid JSON: {exc}") from None
        index = result.samples
        result.samples += 1
        if _is_sample_record(obj):
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


def _print_text(results: list[Result], registry: list[Finding], quiet: bool, out: TextIO) -> None:
    if registry:
        print(f"FAIL contract files: {len(registry)} registry finding(s)", file=out)
        for f in registry:
            print(f"  {f}", file=out)
    for r in results:
        if r.ok:
            if not quiet:
                extra = f" ({r.samples} samples)" if r.kind == "timeline" else ""
                print(f"OK   {r.source}{extra}", file=out)
            continue
        counts = ", ".join(f"{tag}: {len(fs)}" for tag, fs in findings_by_tag(r.findings).items())
        if r.kind == "timeline" and r.first_failure is not None:
            ff = r.first_failure
            print(f"FAIL {r.source}: {r.failing} of {r.samples} samples invalid; first at line {ff['line']} "
                  f"(sample {ff['index']}): {len(r.findings)} finding(s) ({counts})", file=out)
        else:
            print(f"FAIL {r.source}: {len(r.findings)} finding(s) ({counts})", file=out)
        for fs in findings_by_tag(r.findings).values():
            for f in fs:
                print(f"  {f}", file=out)


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
    for path in files:
        try:
            payload = _load_json_file(path)
        except SetupError as exc:
            setup(str(exc))
            continue
        results.append(Result(str(path), "file", contract.check(payload, strict=args.strict)))
    for url in args.url:
        try:
            payload = _fetch(url, args.timeout)
        except SetupError as exc:
            setup(str(exc))
            continue
        results.append(Result(url, "url", contract.check(payload, strict=args.strict)))
    for name in args.timeline:
        try:
            results.append(_check_timeline(Path(name), contract, args.strict))
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
        _print_text(results, registry, args.quiet, out)
        print(f"summary: {len(results)} checked, {len(results) - invalid} valid, {invalid} invalid"
              + (f", {len(registry)} registry finding(s)" if registry else "")
              + (f", {len(setup_errors)} set-up error(s)" if setup_errors else ""), file=out)
    if setup_errors:
        return EXIT_SETUP
    return EXIT_INVALID if registry or invalid else EXIT_OK
