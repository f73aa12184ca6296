"""Evidence folders: one per test and outcome, hashed, archived, never overwritten.

Layout under the evidence root (default ``evidence/``)::

    runs/<run_id>/<group>/<drill folder>/        the files below
    runs/<run_id>/<group>/IEB_<run_id>_<drill folder>.tar.gz (+ .sha256 beside it)
    runs/<run_id>/SIGNOFF.md, run.json
    <group>/<drill folder> -> runs/<run_id>/<group>/<drill folder>   (the latest run)
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import platform
import re
import secrets as _secrets
import subprocess
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .redaction import Redactor
from .statusread import raw_record, to_strict_json

if TYPE_CHECKING:  # pragma: no cover
    from .record import DrillRecord
    from .target import RenderedTarget
    from .verdict import Evaluation

REQUIRED_FILES = ("trigger.md", "observed_status.json", "expected_status.json", "diff.txt", "validation.log",
                  "time_to_safe_ms", "notes.md")
SUMS = "SHA256SUMS"


def new_run_id(commit: str | None = None) -> str:
    """A run id that sorts by time and never collides: ``run_<UTC>_<commit>_<random>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"run_{stamp}_{(commit or 'nocommit')[:10]}_{_secrets.token_hex(3)}"


def git_commit(cwd: Path) -> str | None:
    """The commit of the checkout at ``cwd`` (``GIT_COMMIT`` wins), or None outside a repository."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class RunInfo:
    """Session-wide facts recorded in every evidence folder."""

    run_id: str
    root: Path
    commit: str | None
    started_utc: str
    backend: str
    build_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.run_id

    def create(self) -> None:
        # exist_ok=False: a run id is used once; an earlier run's evidence is never touched.
        self.run_dir.mkdir(parents=True, exist_ok=False)


def folder_name(drill_id: str, backend: str) -> str:
    return drill_id if backend == "process" else f"{drill_id}-{backend}"


class EvidenceWriter:
    """Writes one test's evidence folder from whatever facts exist (a run may have died early)."""

    def __init__(self, info: RunInfo, group: str, name: str, redactor: Redactor) -> None:
        self.info = info
        self.group = group
        self.name = name
        self.redact = redactor
        self.dir = info.run_dir / group / name
        n = 2
        while self.dir.exists():  # the same drill twice in one run (e.g. --count): never overwrite
            self.dir = info.run_dir / group / f"{name}.{n}"
            n += 1
        self.dir.mkdir(parents=True)

    def text(self, name: str, content: str) -> Path:
        p = self.dir / name
        p.write_text(self.redact.text(content), encoding="utf-8")
        return p

    def json(self, name: str, obj: Any) -> Path:
        """Strict JSON (never NaN/Infinity, whatever the target sent), secrets redacted inside the values."""
        return self.text(name, to_strict_json(self.redact.json_obj(obj), indent=2, sort_keys=True, default=str) + "\n")

    def dump(self, obj: Any) -> str:
        """One line of strict, redacted JSON (for .jsonl files)."""
        return self.redact.text(to_strict_json(self.redact.json_obj(obj), sort_keys=True, default=str))

    def copy(self, src: Path | str | None, name: str | None = None) -> Path | None:
        """Copy a file the target wrote, redacted at the byte level (valid UTF-8 or not)."""
        if not src:
            return None
        src = Path(src)
        if not src.is_file():
            return None
        dst = self.dir / (name or src.name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.redact.file(src, dst)
        return dst

    def finish(self) -> dict[str, str]:
        """Write SHA256SUMS, the IEB archive and its .sha256; point the latest link here."""
        # The in-progress marker and the partial files stay until the finished folder is complete (they are
        # removed last, by LiveEvidence.close): neither hashed nor archived.
        transient = {IN_PROGRESS, *PARTIAL}
        files = sorted(p for p in self.dir.rglob("*") if p.is_file() and p.name != SUMS and p.name not in transient)
        lines = [f"{sha256_file(p)}  {p.relative_to(self.dir).as_posix()}" for p in files]
        _atomic_write(self.dir / SUMS, "\n".join(lines) + "\n")
        ieb = self.dir.parent / f"IEB_{self.info.run_id}_{self.dir.name}.tar.gz"
        part = ieb.with_name(ieb.name + ".part")
        with tarfile.open(part, "w:gz") as tar:
            tar.add(self.dir, arcname=self.dir.name, filter=lambda t: None if Path(t.name).name in transient else t)
        os.replace(part, ieb)
        digest = sha256_file(ieb)
        _atomic_write(ieb.parent / (ieb.name + ".sha256"), f"{digest}  {ieb.name}\n")
        self._link_latest()
        return {"folder": str(self.dir), "ieb": str(ieb), "ieb_sha256": digest}

    def _link_latest(self) -> None:
        link = self.info.root / self.group / self.name
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(os.path.relpath(self.dir, link.parent))
            if link.exists() and not link.is_symlink():
                return  # a real folder from some other tool: leave it alone
            os.replace(tmp, link)  # atomic: a reader never sees a missing link
        except OSError:
            if tmp.is_symlink():
                tmp.unlink()


def _atomic_write(path: Path, text: str) -> None:
    """A file that is whole or absent, never half written (an interrupt between the two steps leaves
    only the hidden temporary file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _unified(expected: Any, observed: Any) -> str:
    a = json.dumps(expected, indent=2, sort_keys=True, default=str).splitlines()
    b = json.dumps(observed, indent=2, sort_keys=True, default=str).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "expected_status.json", "observed_status.json", lineterm=""))


def write_drill_evidence(writer: EvidenceWriter, *, record: "DrillRecord | None", evaluation: "Evaluation | None",
                         rendered: "RenderedTarget | None", nodeid: str, drill_id: str, title: str, backend: str,
                         verdict: str, reason: str, backend_info: dict[str, Any], log_files: Iterable[Path] = (),
                         versions: dict[str, str] | None = None) -> dict[str, str]:
    """Write every evidence file for one test from its record. Works with a partial record or none."""
    from .contract import format_findings

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rec, ev = record, evaluation
    tts = rec.time_to_safe_ms if rec else None
    observed = ev.observed_status if ev else None
    expectation = ev.expectation if ev else None
    step = rec.step if rec else None
    drill = rec.drill if rec else {}

    # trigger.md
    t = [f"# Trigger: {drill_id}", "", f"- Drill: {title}", f"- Test: `{nodeid}`", f"- Backend: {backend}"]
    if step is not None:
        trig = drill.get("trigger", {})
        t += [f"- Kind: `{step.kind}`",
              f"- Parameters: `{json.dumps(step.params, sort_keys=True)}`",
              f"- Target-side hook used: **{'yes' if step.target_side_hook else 'no'}**"
              + (" (a documented hook of the service caused the physical condition; the service was not told "
                 "what to report)" if step.target_side_hook else ""),
              f"- Hold: {trig.get('hold_s', 0)}s, released: {trig.get('release_when', 'hold_elapsed')}",
              "", "## What was done", "```json", json.dumps(rec.trigger_info, indent=2, default=str), "```",
              "", "## Release",
              ("Released: " + ("failed: " + step.release_error if step.release_error else "yes")
               if step.released_mono is not None else "Not released: the fault was never fired."),
              "```json", json.dumps(step.release, indent=2, default=str), "```"]
    else:
        t += ["", f"The trigger was not fired (phase reached: {rec.phase if rec else 'setup'})."]
    writer.text("trigger.md", "\n".join(t) + "\n")

    writer.json("observed_status.json", observed)
    writer.json("expected_status.json", expectation.payload if expectation else None)

    d = []
    if expectation is not None:
        d += [f"# compared by equality: {', '.join(expectation.fields)}",
              f"# compared by rule: {json.dumps(expectation.rules, sort_keys=True)}", ""]
        if ev is not None and ev.comparison is not None:
            d += ["## result: " + ("MATCH" if ev.comparison.matched else "MISMATCH")]
            d += [f"- {p}" for p in ev.comparison.problems]
            d += ["", "## deepdiff (compared fields)", ev.comparison.deepdiff_text or "(no difference)"]
        d += ["", "## unified diff (whole payload, jq -S style)", _unified(expectation.payload, observed) or "(identical)"]
    else:
        d.append("no expected status for this drill")
    writer.text("diff.txt", "\n".join(d) + "\n")

    v = []
    if ev is not None and observed is not None:
        findings = ev.observed_findings or []
        v += [f"observed_status.json (sample {ev.observed.i if ev.observed else '?'}): "
              + ("VALID" if not findings else f"INVALID, {len(findings)} finding(s)")]
        if findings:
            v.append(format_findings(findings))
    samples = rec.samples if rec else ()
    v += ["", f"timeline: {len(samples)} samples, {sum(1 for s in samples if s.ok)} with a status payload, "
          f"{len(ev.sample_findings) if ev else 0} contract-invalid"]
    for s, f in (ev.sample_findings[:20] if ev else []):
        v.append(f"sample {s.i} ({s.utc}):")
        v.append(format_findings(f))
    if rec is not None:
        v += ["", f"schema: {rec.contract.get('schema')}", f"manifest: {rec.contract.get('manifest')}"]
    writer.text("validation.log", "\n".join(v) + "\n")
    writer.text("time_to_safe_ms", (f"{tts:.1f}" if tts is not None else "NOT OBSERVED") + "\n")

    n = [f"# {drill_id}: {verdict}", "", f"{title}", ""]
    if reason:
        n += ["## Why", reason, ""]
    if rec is not None:
        n += ["## Pass criteria", ""]
        for r in (ev.checks if ev else []):
            n.append(f"- [{'x' if r.passed else ' '}] **{r.name}** ({r.verdict}): {r.detail}"
                     + (f"  \n  _criterion: {r.criterion}_" if r.criterion else ""))
        sampling = rec.timeline.interval_stats()
        n += ["", "## Timing",
              f"- time to safe: {'%.1f ms' % tts if tts is not None else 'not observed'} "
              f"(budget {float(drill.get('time_to_safe_budget_ms', 0)):.0f} ms, from "
              f"{(drill.get('budget_source') or {}).get('why', 'the drill default')}; counted from the fault landing)",
              f"- sampling: {sampling['count']} samples, interval p50 {sampling['p50_ms']:.1f} ms, "
              f"p99 {sampling['p99_ms']:.1f} ms, max {sampling['max_ms']:.1f} ms"]
        if step is not None and step.target_side_hook:
            n += ["", "## Disclosure", "This drill used a documented target-side fault hook: the service caused the "
                  "physical condition itself when the hook file appeared (see trigger.md)."]
    n += ["", "## Risks / not covered",
          "- The witness ledger sees what reached the venue; orders lost before the venue are not visible to it."]
    writer.text("notes.md", "\n".join(n) + "\n")

    if rec is not None:
        rec.write(writer.dir, dump=writer.dump)
        raw = [s for s in rec.samples if getattr(s, "raw", None)]
        if raw:  # what a misbehaving target really sent, escaped (the timeline itself stays strict JSON)
            writer.text("raw_samples.jsonl", "".join(
                writer.dump({"i": s.i, **raw_record(writer.redact.bytes(s.raw))}) + "\n" for s in raw))
        writer.json("checks.json", [r.__dict__ for r in (ev.checks if ev else [])])
        if rec.fingerprint_midrun:
            writer.text("fingerprint_midrun.jsonl", "".join(writer.dump(s) + "\n" for s in rec.fingerprint_midrun))
    log_set = {Path(p).resolve() for p in log_files}
    if rendered is not None:
        for name, path in rendered.files.items():
            # `log*` entries are the service's logs: stored once, under logs/ with the start logs
            if name != "stop" and not (name.startswith("log") and Path(path).resolve() in log_set):
                writer.copy(path, name=Path(path).name)
        if rendered.hooks_log:
            writer.copy(rendered.hooks_log, "hooks.log")
    logs_dir = writer.dir / "logs"
    for p in dict.fromkeys(Path(p).resolve() for p in log_files):  # each log once, under logs/
        if p.is_file():
            logs_dir.mkdir(exist_ok=True)
            writer.copy(p, f"logs/{Path(p).name}")

    meta = {
        "run_id": writer.info.run_id, "test": nodeid, "drill": drill_id, "backend": backend, "verdict": verdict,
        "reason": reason, "time_to_safe_ms": tts, "commit": writer.info.commit, "build_id": writer.info.build_id,
        "run_started_utc": writer.info.started_utc, "drill_started_utc": rec.started_utc if rec else None,
        "written_utc": now, "target": backend_info, "host": platform.node(), "python": platform.python_version(),
        "versions": versions or {}, "outcome": rec.outcome if rec else None,
        "facts": {**(rec.facts if rec else {}), **(ev.check_facts() if ev else {})},
    }
    writer.json("meta.json", meta)
    return writer.finish()


def verify_tree(root: Path) -> tuple[int, list[str]]:
    """Re-check every SHA256SUMS and ``*.sha256`` under ``root``. Returns (files checked, problems)."""
    checked, problems = 0, []
    for sums in sorted(root.rglob(SUMS)):
        listed = set()
        for line in sums.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            digest, _, rel = line.partition("  ")
            listed.add(rel)
            target = sums.parent / rel
            checked += 1
            if not target.is_file():
                problems.append(f"{target}: listed in {sums} but missing")
            elif sha256_file(target) != digest:
                problems.append(f"{target}: sha256 mismatch (listed {digest[:12]}…, now {sha256_file(target)[:12]}…)")
        extra = [p for p in sums.parent.rglob("*") if p.is_file() and p.name != SUMS
                 and p.relative_to(sums.parent).as_posix() not in listed]
        problems += [f"{p}: not listed in {sums}" for p in extra]
    for side in sorted(root.rglob("*.sha256")):
        digest, _, name = side.read_text(encoding="utf-8").strip().partition("  ")
        target = side.parent / name
        checked += 1
        if not target.is_file():
            problems.append(f"{target}: named in {side} but missing")
        elif sha256_file(target) != digest:
            problems.append(f"{target}: sha256 mismatch with {side.name}")
    return checked, problems



IN_PROGRESS = "IN_PROGRESS.json"
INCOMPLETE = "INCOMPLETE.json"
PARTIAL = ("timeline.partial.jsonl", "marks.partial.json", "witness_ledger.partial.jsonl")


class LiveEvidence:
    """What a drill has seen so far, appended to its evidence folder while it runs, so a runner that
    dies (SIGKILL, power loss) still leaves the timeline, the marks and the witness ledger behind.

    ``IN_PROGRESS.json`` names the runner's pid and its start time; the next session (or
    ``chaosdrill verify-evidence``) turns a folder whose runner is gone into an INCOMPLETE one.
    """

    def __init__(self, folder: Path, dump: Any, *, nodeid: str, drill_id: str, backend: str, run_id: str) -> None:
        from .backends.procguard import process_start_time

        self.folder = folder
        self.dump = dump
        self._lock = __import__("threading").Lock()
        self._timeline = open(folder / PARTIAL[0], "a", encoding="utf-8")
        self._ledger = open(folder / PARTIAL[2], "a", encoding="utf-8")
        marker = {"pid": os.getpid(), "pid_start": process_start_time(os.getpid()), "host": platform.node(),
                  "test": nodeid, "drill": drill_id, "backend": backend, "run_id": run_id,
                  "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        (folder / IN_PROGRESS).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    def sample(self, sample: Any) -> None:
        with self._lock:
            if not self._timeline.closed:
                self._timeline.write(self.dump(sample.to_json()) + "\n")
                self._timeline.flush()

    def ledger(self, entries: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            if not self._ledger.closed:
                self._ledger.writelines(self.dump(e) + "\n" for e in entries)
                self._ledger.flush()

    def marks(self, marks: Iterable[Any]) -> None:
        tmp = self.folder / (PARTIAL[1] + ".tmp")
        tmp.write_text(self.dump([m.__dict__ for m in marks]) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / PARTIAL[1])

    def stop(self) -> None:
        """No more appends (the drill is over); the partial files stay until :meth:`close`."""
        with self._lock:
            self._timeline.close()
            self._ledger.close()

    def close(self) -> None:
        """The finished evidence replaces the partial files; the in-progress marker goes last, so a
        folder interrupted while its evidence is written is still marked."""
        self.stop()
        for name in PARTIAL + (IN_PROGRESS,):
            p = self.folder / name
            if p.exists():
                p.unlink()


_SIGNED_RUN = re.compile(r"^Run `(run_[^`]+)`", re.M)


def prune_runs(root: Path, keep: int, current: str, policy: str = "all") -> list[str]:
    """Remove old run folders under ``root/runs``: those beyond the newest ``keep`` (0 keeps any number; run ids
    start with their UTC time, so names sort by age), and those ``policy`` does not keep (like pytest's
    ``tmp_path_retention_policy``: ``all`` keeps every run, ``failed`` the runs where a drill did not PASS,
    ``none`` no earlier run). Never the current run, the run of the latest full sign-off
    (``root/SIGNOFF.md``), nor one with a drill in progress. Latest-run links left pointing nowhere go too.
    Returns one line per run removed."""
    import shutil

    runs = Path(root) / "runs"
    if (keep <= 0 and policy == "all") or not runs.is_dir():
        return []
    try:
        signed = _SIGNED_RUN.search((Path(root) / "SIGNOFF.md").read_text(encoding="utf-8"))
    except OSError:
        signed = None
    protected = {current, signed.group(1) if signed else None}
    folders = sorted((p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)
    old = {p: f"chaosdrill_evidence_retention_count={keep}" for p in folders[:max(0, len(folders) - keep)]} if keep > 0 else {}
    for p in folders:
        if p not in old and (policy == "none" or (policy == "failed" and _all_passed(p))):
            old[p] = f"chaosdrill_evidence_retention_policy={policy}"
    out = []
    for folder, why in sorted(old.items()):
        if folder.name in protected or any(folder.glob(f"*/*/{IN_PROGRESS}")):
            continue  # a drill of that run may be running now (or died: mark_incomplete handles it)
        shutil.rmtree(folder, ignore_errors=True)
        out.append(f"removed {folder} ({why})")
    for link in Path(root).glob("*/*"):
        if link.is_symlink() and not link.exists():
            link.unlink()
    return out


def _all_passed(run: Path) -> bool:
    """Every drill of a run folder PASSed (and it has at least one): what the ``failed`` policy removes."""
    verdicts = []
    for meta in run.glob("*/*/meta.json"):
        try:
            verdicts.append(json.loads(meta.read_text(encoding="utf-8")).get("verdict"))
        except (OSError, ValueError):
            return False  # unreadable: kept for a person to look at
    return bool(verdicts) and all(v == "PASS" for v in verdicts)


def mark_incomplete(root: Path) -> list[str]:
    """Folders under ``root`` whose runner died mid-drill become INCOMPLETE (meta.json, notes, hashes);
    a folder whose runner is still alive is left alone. Returns one line per folder marked."""
    from .backends.procguard import alive

    out = []
    runs = Path(root) / "runs"
    if not runs.is_dir():
        return out
    for marker in sorted(runs.glob(f"*/*/*/{IN_PROGRESS}")):
        folder = marker.parent
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if info.get("host") == platform.node() and isinstance(info.get("pid"), int) \
                and alive(info["pid"], info.get("pid_start")):
            continue  # a drill that is running right now
        samples = _count_lines(folder / PARTIAL[0])
        reason = (f"the runner (pid {info.get('pid')}) died during the drill, before its evidence was finished; "
                  f"what it had seen is kept ({samples} status sample(s) in {PARTIAL[0]}). Never a finished run.")
        out.append(mark_folder_incomplete(folder, reason))
    return out


def mark_folder_incomplete(folder: Path, reason: str) -> str:
    """Mark one drill folder INCOMPLETE now (its ``IN_PROGRESS.json`` becomes ``INCOMPLETE.json``, a
    meta.json and notes.md say why, every file kept is hashed). Used for a runner that died, and by the
    session itself when an interrupt lands while the folder is being written. Returns one line."""
    marker = folder / IN_PROGRESS
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    meta = {"verdict": "INCOMPLETE", "reason": reason, "test": info.get("test"), "drill": info.get("drill"),
            "backend": info.get("backend"), "run_id": info.get("run_id"), "drill_started_utc": info.get("started_utc"),
            "marked_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    _atomic_write(folder / "notes.md", f"# {info.get('drill')}: INCOMPLETE\n\n## Why\n{reason}\n")
    _atomic_write(folder / INCOMPLETE, json.dumps({**info, "reason": reason}, indent=2) + "\n")
    _atomic_write(folder / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (SUMS, IN_PROGRESS))
    _atomic_write(folder / SUMS, "".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files))
    if marker.exists():
        marker.unlink()
    return f"{folder}: INCOMPLETE ({reason})"


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0
