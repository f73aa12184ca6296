"""``chaosdrill doctor TARGET_FILE``: what each bundled drill can prove about a service, before a drill.

Starts the service once (no fault), with the drills' venue and fault proxy, watches it for a few
seconds and says, drill by drill, READY (every prerequisite the drill's fault and checks depend on was
seen), NOT PROVEN (what to add: a target-file field, a file, a subscription, a header) or SKIPPED (the
backend cannot run it). READY is not PASS: how the service behaves under the fault is for the drill.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEFAULT_OBSERVE_S = 6.0
#: The instrument the feed-gap drills act on (drills 5 and 6).
GAP_INST = "BTC-USDT-SWAP"


@dataclass
class Observation:
    """What one fault-free run of the service showed (the facts the readiness rules read)."""

    started: bool = False
    start_problem: str = ""
    samples: int = 0
    contract_problems: list[str] = field(default_factory=list)
    steady: bool = False
    steady_problem: str = ""
    orders_per_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    venue_state: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)   # files.<name> -> parsed JSON, "absent" or "unreadable"
    log_tail: list[str] = field(default_factory=list)     # the service's last log lines (secrets redacted) if it failed

    def public_subs(self) -> set[str]:
        return {s for c in self.venue_state.get("sessions", {}).get("public", []) for s in c.get("subs", [])}

    def private_logged_in(self) -> bool:
        return any(c.get("logged_in") for c in self.venue_state.get("sessions", {}).get("private", []))

    def order_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("method") == "POST" and r.get("path", "").startswith("/api/v5/trade/")
                and r.get("path", "").endswith(("order", "batch-orders"))]


@dataclass
class Readiness:
    """One drill's readiness: ``READY``, ``NOT PROVEN`` or ``SKIPPED``, with what to add."""

    drill: str
    verdict: str
    missing: list[str] = field(default_factory=list)   # each: what is lacking → what to add
    optional: list[str] = field(default_factory=list)  # extras that would add evidence, never required
    unseen: list[str] = field(default_factory=list)    # what only the drill's fault can show

    def to_json(self) -> dict[str, Any]:
        return {"drill": self.drill, "verdict": self.verdict, "missing": self.missing, "optional": self.optional,
                "unseen": self.unseen}


# --- readiness rules: one per prerequisite a trigger kind or a check depends on ------------------------

Rule = Callable[[Observation], "str | None"]


def _fingerprint(obs: Observation) -> Any:
    return obs.files.get("fingerprint")


def _needs_fingerprint_fields(*fields: str) -> Rule:
    def rule(obs: Observation) -> str | None:
        if "fingerprint" not in obs.files:
            return None  # not declared: the target-file rule names files.fingerprint
        doc = _fingerprint(obs)
        if not isinstance(doc, dict):
            return (f"files.fingerprint was {doc or 'absent'} during the run: write execution_fingerprint.json "
                    "(docs/targets.md, specs/execution_fingerprint.schema.json)")
        lacking = [f for f in fields if _dig(doc, f) is None]
        return (f"execution_fingerprint.json lacks {', '.join(lacking)}: add it (docs/targets.md)") if lacking else None
    return rule


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _subscribed(channel: str) -> Rule:
    def rule(obs: Observation) -> str | None:
        if f"{channel}:{GAP_INST}" in obs.public_subs():
            return None
        return (f"no subscription to {channel} of {GAP_INST} on /ws/v5/public was seen: subscribe to it "
                "(the fault lands on that channel)")
    return rule


def _feed_subscribed(obs: Observation) -> str | None:
    if any(s.split(":", 1)[0] in ("books", "trades") for s in obs.public_subs()):
        return None
    return ("no subscription to books or trades on /ws/v5/public was seen: subscribe to one "
            "(the freeze withholds those channels; a fault on no traffic never lands)")


def _logged_in(obs: Observation) -> str | None:
    return None if obs.private_logged_in() else (
        "no logged-in session on /ws/v5/private was seen: log in there (the session termination lands on it)")


def _two_leg_batches(obs: Observation) -> str | None:
    if any(r.get("path") == "/api/v5/trade/batch-orders" and len(r.get("clOrdIds") or []) == 2 for r in obs.requests):
        return None
    return ("no two-leg POST /api/v5/trade/batch-orders was seen: send two-leg orders as one batch "
            "(the partial fill lands on the next one)")


def _exp_time(obs: Observation) -> str | None:
    orders = obs.order_requests()
    if not orders:
        return "no order request was seen, so the expTime header could not be checked"
    if all(r.get("expTime") for r in orders):
        return None
    return "order requests without OKX's expTime header were seen: send expTime on every place / batch request"


#: Rules by trigger kind (what makes the fault land) and by check name (what the check needs to judge).
TRIGGER_RULES: dict[str, list[Rule]] = {
    "venue.partial_fill": [_two_leg_batches],
    "venue.book_gap": [_subscribed("books")],
    "venue.trades_gap": [_subscribed("trades")],
    "venue.freeze": [_feed_subscribed],
    "venue.session_termination": [_logged_in],
}
CHECK_RULES: dict[str, list[Rule]] = {
    "no_duplicate_trade_processing": [_needs_fingerprint_fields("trades.processed", "trades.duplicates_dropped")],
    "fingerprint_error_gate": [_needs_fingerprint_fields("error_count", "error_events")],
    "sustained_call_pressure": [_needs_fingerprint_fields("api_calls")],
    "no_order_accepted_after_not_found": [_exp_time],
}
#: Extras a check can use as further evidence but never requires: check -> (field in the fingerprint, why).
CHECK_OPTIONAL: dict[str, tuple[str, str]] = {
    "latch_clears_only_after_reconcile": (
        "latch_events", "execution_fingerprint.json latch_events, the service's own clear times: without them, "
                        "reads and a clear that fall between two 5 ms samples end NOT PROVEN"),
}
#: A drill's occasion hook (``occasion:`` in the drill file), optional: hook -> what it gives a service.
OCCASION_WHY: dict[str, str] = {
    "reduce_exposure": "the occasion to show reduce-only orders while OPEN is blocked: without it, a service "
                       "that does not reduce on its own ends reduce_only_permitted NOT PROVEN",
}


def _occasion(d: Any, config: Any) -> str | None:
    """The drill's optional occasion hook, said present or absent in the target file (with what to add)."""
    hook = (d.occasion or {}).get("hook")
    if not hook:
        return None
    present = hook in config.hooks and bool(config.hooks_log)
    how = "" if present else (f'; add hooks: {{{hook}: {{file: "{{control_dir}}/{hook}"}}}} and hooks_log, and answer '
                              '"applied" or "refused" in hooks_log (docs/targets.md, "Occasion hooks")')
    return (f"hooks.{hook}, {OCCASION_WHY.get(hook, 'an occasion the drill gives once OPEN is blocked')} "
            f"({'present' if present else 'absent'}{how})")


#: What only the fault itself can show (so the doctor names it rather than pretending to know).
TRIGGER_UNSEEN: dict[str, str] = {
    "hook.apply": "whether the service obeys the hook's control file and logs \"applied\" to hooks_log "
                  "(applying it is the fault)",
    "process.kill_restart": "the restart latch in the first status answer after an unclean stop (needs the kill)",
    "file.stop": "the STOP handling and the final run_manifest.json, judged against specs/run_manifest.schema.json "
                 "once the service has exited (needs the STOP file)",
}


def _schema_rule(name: str, schema_file: str) -> Rule:
    """files.<name> read during the run must meet its schema in specs/ (absent is the steady state's concern)."""
    def rule(obs: Observation) -> str | None:
        doc = obs.files.get(name)
        if not isinstance(doc, dict):
            return None if name not in obs.files else f"files.{name} was {doc} during the run"
        from jsonschema import Draft202012Validator

        from ..resources import specs_dir

        schema = json.loads((specs_dir() / schema_file).read_text(encoding="utf-8"))
        errs = sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        if not errs:
            return None
        where = "/".join(map(str, errs[0].path)) or "(top level)"
        return f"files.{name} does not meet specs/{schema_file}: field {where}: {errs[0].message}"
    return rule


#: Schemas of the files a service writes, checked on every drill whose checks read the file. Only files
#: the drills read while the service runs: run_manifest.json is judged once the service has exited.
FILE_SCHEMAS = {"fingerprint": "execution_fingerprint.schema.json"}


def assess(drills: list[Any], needs: dict[str, Any], caps: frozenset[str], backend: str, config: Any,
           obs: Observation) -> list[Readiness]:
    """Each drill's readiness from its requirements, the backend's capabilities and one observation."""
    from ..registry import missing_target_fields

    out = []
    for d in drills:
        req = needs[d.id]
        if d.backends is not None and backend not in d.backends:
            out.append(Readiness(d.id, "SKIPPED", [f"runs only on {', '.join(d.backends)} (--backend)"]))
            continue
        lacking_caps = sorted(set(req.capabilities) - set(caps))
        if lacking_caps:
            able = [b for b, c in _capabilities().items() if set(req.capabilities) <= c]
            out.append(Readiness(d.id, "SKIPPED", [f"the {backend} backend cannot {', '.join(lacking_caps)}"
                                                   + (f" (--backend {' or '.join(able)} can)" if able else "")]))
            continue
        missing = [f"target file lacks {f}: add {_FIELD_HINTS.get(f, f)} (docs/targets.md)"
                   for f in missing_target_fields(config, req.target_fields)]
        if not obs.started:
            missing.append(f"the service did not start: {obs.start_problem}")
        elif not obs.steady:
            missing.append(f"no steady state: {obs.steady_problem}")
        if obs.contract_problems:
            missing.append(f"status not contract-valid: {obs.contract_problems[0]} (chaosdrill validate-status)")
        if obs.started:
            rules = [r for k in _kinds(d) for r in TRIGGER_RULES.get(k, [])]
            for spec in d.checks:
                rules += CHECK_RULES.get(spec.name, [])
            rules += [_schema_rule(f.split(".", 1)[1], FILE_SCHEMAS[f.split(".", 1)[1]])
                      for f in req.target_fields if f.startswith("files.") and f.split(".", 1)[1] in FILE_SCHEMAS]
            for rule in dict.fromkeys(rules):
                why = rule(obs)
                if why and why not in missing:
                    missing.append(why)
        optional = []
        for name in dict.fromkeys(s.name for s in d.checks if s.name in CHECK_OPTIONAL):
            fp_field, why = CHECK_OPTIONAL[name]
            present = isinstance(_fingerprint(obs), dict) and _dig(_fingerprint(obs), fp_field) is not None
            optional.append(f"{why} ({'present' if present else 'absent'})")
        occasion = _occasion(d, config)
        if occasion is not None:
            optional.append(occasion)
        unseen = [TRIGGER_UNSEEN[k] for k in _kinds(d) if k in TRIGGER_UNSEEN]
        out.append(Readiness(d.id, "NOT PROVEN" if missing else "READY", missing, optional, unseen))
    return out


def _capabilities() -> dict[str, frozenset[str]]:
    from ..backends import builtin_backend_class

    return {b: frozenset(builtin_backend_class(b).capabilities) for b in ("process", "docker", "external")}


def _kinds(d: Any) -> list[str]:
    """The trigger kinds a drill fires: its own, or its schedule's steps'."""
    params = d.trigger_params
    steps = (params.get("steps") or params.get("pool")) if d.trigger_kind.startswith("schedule") else None
    if isinstance(steps, list):
        return list(dict.fromkeys(str(s.get("kind", "")) for s in steps if isinstance(s, dict)))
    return [d.trigger_kind]


#: What to add for a missing target-file field: the line the bundled target files use.
_FIELD_HINTS = {
    "files.stop": 'files: {stop: "{control_dir}/STOP"} and a service that exits cleanly when the file appears',
    "files.run_manifest": 'files: {run_manifest: "{data_dir}/run_manifest.json"} and that file (specs/run_manifest.schema.json)',
    "files.fingerprint": 'files: {fingerprint: "{data_dir}/execution_fingerprint.json"} and that file '
                         '(specs/execution_fingerprint.schema.json)',
    "hooks_log": 'hooks_log: "{control_dir}/hooks.log" and one JSON line there per hook that takes effect',
    "hooks.wal_stall": 'hooks: {wal_stall: {file: "{control_dir}/wal_stall"}} and a WAL writer that stops while it exists',
    "hooks.emit_reason_token": 'hooks: {emit_reason_token: {file: "{control_dir}/emit_reason_token", content: '
                               '"KILL_UNREGISTERED_SUBSYSTEM_TOKEN"}} and a service that emits the file\'s token',
}


# --- the one fault-free run --------------------------------------------------------------------------

def observe(config: Any, backend_obj: Any, observe_s: float) -> Observation:
    """Start the service once with the drills' venue and proxy, no fault; watch it for ``observe_s``
    after its first status answer; stop it. Never raises for the service's faults: they are findings."""
    import requests

    from ..backends.base import DrillSite
    from ..checks import ledger_orders
    from ..contract import Contract
    from ..timeline import fetch_status

    obs = Observation()
    contract = Contract.load(None, None)
    with tempfile.TemporaryDirectory(prefix="chaosdrill-doctor-") as tmp:
        site = DrillSite("doctor", Path(tmp), "doctor").create()
        with backend_obj.harness(site, config) as harness:
            target = backend_obj.create_target(config, site, harness)
            session = requests.Session()
            try:
                try:
                    target.start()
                except Exception as exc:  # the service's own start failure is the finding
                    obs.start_problem = f"{type(exc).__name__}: {exc}"
                    return obs
                url = target.target.status_url
                deadline = time.monotonic() + config.startup_timeout_s
                first_ok: float | None = None
                last_err = "no answer"
                active_since: float | None = None
                while time.monotonic() < deadline or (first_ok is not None and time.monotonic() < first_ok + observe_s):
                    if not target.running():
                        obs.start_problem = f"the service exited (code {target.returncode()})"
                        break
                    _, _, payload, err = fetch_status(session, url, timeout=1.0)
                    now = time.monotonic()
                    if err is None and isinstance(payload, dict):
                        if first_ok is None:
                            first_ok = now
                            obs.started = True
                        obs.samples += 1
                        found = contract.check(payload)
                        if found and len(obs.contract_problems) < 3:
                            obs.contract_problems.append(str(found[0]))
                        active = payload.get("trading_mode") == "Active" and not payload.get("open_permission_blocked_latch")
                        active_since = (active_since or now) if active else None
                    else:
                        last_err = err or "not a JSON object"
                    if first_ok is not None and now >= first_ok + observe_s:
                        break
                    time.sleep(0.05)
                if first_ok is None and not obs.start_problem:
                    obs.start_problem = (f"{url} gave no status within startup_timeout_s "
                                         f"({config.startup_timeout_s:g} s): {last_err}")
                ledger = harness.venue.ledger()
                now = time.monotonic()
                orders = len(ledger_orders(ledger, now - 2.0, now))
                obs.orders_per_s = orders / 2.0
                obs.requests = [e for e in ledger if e.get("type") == "request"]
                obs.venue_state = harness.venue.state()
                if obs.started:
                    if active_since is None or now - active_since < 1.0:
                        obs.steady_problem = "the status was not Active with the latch clear over the last second"
                    elif obs.orders_per_s < 5:
                        obs.steady_problem = (f"the venue saw {orders} orders in the last 2 s (the drills need ≥ 5 "
                                              "order attempts per second in steady state)")
                for name, path in target.target.files.items():
                    if name == "stop" or name.startswith("log"):
                        continue
                    obs.files[name] = _read_json(Path(path))
                if obs.started and not obs.steady_problem:
                    if obs.files.get("fingerprint") in ("absent", "unreadable"):
                        obs.steady_problem = (f"files.fingerprint is declared but was {obs.files['fingerprint']}: "
                                              "write it atomically at least every 0.5 s (docs/targets.md)")
                    else:
                        obs.steady = True
            finally:
                session.close()
                try:
                    target.stop()
                finally:
                    if not obs.steady:
                        obs.log_tail = _log_tail(target)
                    target.close()
    return obs


def _log_tail(target: Any, lines: int = 8) -> list[str]:
    """The last lines of the service's output, secrets redacted (the logs go with the temp folder)."""
    from ..redaction import Redactor

    redactor = Redactor(target.target.secrets())
    out: list[str] = []
    for path in target.logs():
        try:
            out += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return [redactor.text(line) for line in out[-lines:]]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "absent"
    except (OSError, ValueError):
        return "unreadable"


# --- command line ------------------------------------------------------------------------------------

def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="the target file (YAML) to check")
    p.add_argument("--backend", default="process", help="process (default), docker or external")
    p.add_argument("--drills", action="append", default=[], help="drill files or folders (default: the bundled drills)")
    p.add_argument("--observe-s", type=float, default=DEFAULT_OBSERVE_S,
                   help=f"seconds to watch the service after its first status answer (default {DEFAULT_OBSERVE_S:g})")
    p.add_argument("--json", action="store_true", help="print the readiness as JSON")


def run(args: argparse.Namespace) -> int:
    from ..backends import builtin_backend_class
    from ..backends.base import BackendSettings
    from ..errors import BackendUnavailable
    from ..drill import load_drills
    from ..errors import DrillDefinitionError, TargetConfigError
    from ..registry import Registry, validate_drill
    from ..resources import drills_dir
    from ..target import load_target

    try:
        config = load_target(args.target)
        drills = load_drills(args.drills or [drills_dir()])
    except (TargetConfigError, DrillDefinitionError) as exc:
        print(f"chaosdrill doctor: {exc}", file=sys.stderr)
        return 2
    cls = builtin_backend_class(args.backend)
    if cls is None:
        print(f"chaosdrill doctor: --backend: unknown backend {args.backend!r} (process, docker, external)", file=sys.stderr)
        return 2
    registry = Registry.builtin()
    needs = {}
    for d in drills:
        problems, needs[d.id] = validate_drill(d, registry)
        if problems:
            print(f"chaosdrill doctor: {d.path}: {problems[0]}", file=sys.stderr)
            return 2
    backend = cls(BackendSettings(run_id="doctor"))
    try:
        backend.check_available()
        t0 = time.monotonic()
        obs = observe(config, backend, args.observe_s)
        took = time.monotonic() - t0
    except BackendUnavailable as exc:
        print(f"chaosdrill doctor: {args.backend} backend: {exc}", file=sys.stderr)
        return 2
    finally:
        backend.close()
    result = assess(drills, needs, cls.capabilities, args.backend, config, obs)
    if args.json:
        print(json.dumps({"target": str(args.target), "backend": args.backend, "observed_s": round(took, 1),
                          "log_tail": obs.log_tail,
                          "drills": [r.to_json() for r in result]}, indent=2))
    else:
        _print(args, config, obs, result, took)
    return 0 if all(r.verdict != "NOT PROVEN" for r in result) else 1


def _print(args: argparse.Namespace, config: Any, obs: Observation, result: list[Readiness], took: float) -> None:
    print(f"chaosdrill doctor: {config.name} ({args.target}), {args.backend} backend, no fault injected, {took:.1f} s")
    if obs.started:
        print(f"  status: {obs.samples} samples, {len(obs.contract_problems) and 'NOT ' or ''}contract-valid; "
              f"steady state: {'yes' if obs.steady else 'no (' + obs.steady_problem + ')'}; "
              f"{obs.orders_per_s:g} orders/s at the venue")
    if obs.log_tail:
        print("  the service's last output lines:")
        for line in obs.log_tail:
            print(f"    | {line}")
    width = max(len(r.drill) for r in result)
    for r in result:
        print(f"{r.drill:<{width}}  {r.verdict}")
        for m in r.missing:
            print(f"{'':<{width}}    - {m}")
        for o in r.optional:
            print(f"{'':<{width}}    + optional: {o}")
        for u in r.unseen:
            print(f"{'':<{width}}    ? not seen without the fault: {u}")
    print("READY: every prerequisite this run could see is there; whether the service behaves right under the "
          "fault is the drill's to prove (pytest -m phase2 / -m ops).")
