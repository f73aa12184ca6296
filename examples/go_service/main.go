// Command go_service is an OKX v5 demo-trading bot written only from the pytest-chaosdrill docs
// (README.md, docs/*.md, specs/): it serves the status contract, journals intents in a bounded WAL,
// latches open permission on feed, session and restart faults, and reconciles before it opens again.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
)

// Set at build time (-ldflags -X); the run manifest's audit fields.
var (
	gitCommit = "not-applicable:built-without-git"
	buildID   = "go-service-dev"
)

const (
	instA         = "BTC-USDT-SWAP"
	instB         = "ETH-USDT-SWAP"
	tickEvery     = 100 * time.Millisecond
	staleAfter    = 500 * time.Millisecond
	degradedHold  = 1500 * time.Millisecond
	expTimeMs     = 1500 // an order request's deadline (OKX expTime), venue clock
	notFoundGrace = 1000 // "not found" is final only this long after expTime
)

// latch codes in the manifest's precedence order
var latchOrder = []string{
	"RESTART_RECONCILE_REQUIRED", "WS_BOOK_GAP_RECONCILE_REQUIRED", "WS_TRADES_GAP_RECONCILE_REQUIRED",
	"WS_DATA_STALE_RECONCILE_REQUIRED", "INVENTORY_MISMATCH_RECONCILE_REQUIRED",
	"SESSION_TERMINATION_RECONCILE_REQUIRED",
}

// monoNow is the host's CLOCK_MONOTONIC in seconds (the clock the plugin and venue share).
func monoNow() float64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func utcNow() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000000Z") }

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type latchEntry struct {
	setMono   float64
	endedMono float64 // 0 while the condition lasts
}

type errEvent struct {
	Type     string `json:"type"`
	UTC      string `json:"utc"`
	Endpoint string `json:"endpoint,omitempty"`
	Status   int    `json:"status,omitempty"`
}

type unresolved struct {
	clOrdID, inst, side string
	sz                  int
	expTime             int64 // venue ms
}

type svc struct {
	mu sync.Mutex

	restURL, wsPub, wsPriv string
	apiKey, secret, pass   string
	dataDir, controlDir    string
	hooksLog               string
	walCap                 int
	registry               map[string]bool
	http                   *http.Client
	startMs                int64
	runID                  string
	clSeq                  int
	clPrefix               string
	clockOffsetMs          int64
	lastResync             time.Time

	// trading state
	pos                map[string]int
	posSeq             int // bumped on every order answer: a positions read older than it is stale
	inflight           bool
	readInflight       bool
	rampUp             bool
	unres              []unresolved
	emergency          bool
	flatSince          time.Time
	killed             bool
	stopping           bool
	latch              map[string]*latchEntry
	latchEvts          []map[string]interface{}
	restDegUntil       time.Time
	sessionUnconfirmed bool
	sessions10028      []time.Time
	loggedIn           bool
	privConn           *websocket.Conn

	// feed
	haveFeed    bool
	feedSeen    bool // a books/trades event arrived since this process started
	lastFeed    time.Time
	feedStale   bool
	lastSeq     int64
	bookGap     bool
	pubConn     *websocket.Conn
	lastTradeID int64
	seenTrades  map[int64]bool
	tradesGap   bool
	processed   int
	dupDropped  int

	// WAL
	walCh       chan []byte
	walFailures int
	walLastFail time.Time
	walStalled  bool

	// telemetry
	apiCalls   int
	errCount   int
	errEvents  []errEvent
	fpDirty    bool
	loopTickMs int64
	latencies  []float64
	p95        float64
	diskPct    float64
	diskTs     int64
	startUTC   string
}

func newSvc() *svc {
	capN, _ := strconv.Atoi(env("WAL_CAPACITY", "16"))
	if capN < 1 {
		capN = 16
	}
	s := &svc{
		restURL: strings.TrimRight(env("EXCHANGE_REST_URL", "http://127.0.0.1:8900"), "/"),
		wsPub:   env("EXCHANGE_WS_PUBLIC", "ws://127.0.0.1:8900/ws/v5/public"),
		wsPriv:  env("EXCHANGE_WS_PRIVATE", "ws://127.0.0.1:8900/ws/v5/private"),
		apiKey:  os.Getenv("API_KEY"), secret: os.Getenv("API_SECRET"), pass: os.Getenv("API_PASSPHRASE"),
		dataDir: env("DATA_DIR", "data"), controlDir: env("CONTROL_DIR", "control"),
		walCap: capN, pos: map[string]int{}, latch: map[string]*latchEntry{},
		seenTrades: map[int64]bool{}, walCh: make(chan []byte, capN), rampUp: true,
		startMs: time.Now().UnixMilli(), startUTC: utcNow(),
	}
	s.hooksLog = env("HOOKS_LOG", filepath.Join(s.controlDir, "hooks.log"))
	s.runID = fmt.Sprintf("go-%d-%d", s.startMs, os.Getpid())
	s.clPrefix = "g" + strconv.FormatInt(s.startMs, 36) + "x"
	timeout, err := strconv.ParseFloat(env("REQUEST_TIMEOUT_S", "1.5"), 64)
	if err != nil || timeout <= 0 {
		timeout = 1.5
	}
	s.http = &http.Client{Timeout: time.Duration(timeout * float64(time.Second)),
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}
	s.registry = loadRegistry(os.Getenv("REASON_MANIFEST"))
	return s
}

// loadRegistry reads every registered code from the reason manifest (the unknown-token check).
func loadRegistry(path string) map[string]bool {
	reg := map[string]bool{}
	if path == "" {
		return reg
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("REASON_MANIFEST %s: %v", path, err)
	}
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch t := v.(type) {
		case map[string]interface{}:
			if c, ok := t["code"].(string); ok {
				reg[c] = true
			}
			for _, x := range t {
				walk(x)
			}
		case []interface{}:
			for _, x := range t {
				if str, ok := x.(string); ok {
					reg[str] = true
				}
				walk(x)
			}
		}
	}
	var m interface{}
	if err := json.Unmarshal(raw, &m); err != nil {
		log.Fatalf("REASON_MANIFEST %s: %v", path, err)
	}
	walk(m)
	return reg
}

// ---------- status ----------

func (s *svc) modeLocked(now time.Time) (mode, risk string, reasons []string, codes []string, conn, bunker bool) {
	for _, c := range latchOrder {
		if s.latch[c] != nil {
			codes = append(codes, c)
		}
	}
	walBlocked := len(s.walCh) >= s.walCap || (!s.walLastFail.IsZero() && now.Sub(s.walLastFail) < time.Second)
	bunker = now.Before(s.restDegUntil) || len(s.unres) > 0
	conn = bunker || s.feedStale || s.sessionUnconfirmed || s.bookGap || s.tradesGap || !s.loggedIn && s.sessionUnconfirmed
	degraded := s.emergency || walBlocked || s.sessionUnconfirmed
	risk = "Healthy"
	if degraded {
		risk = "Degraded"
	}
	if s.killed {
		return "Kill", risk, []string{"KILL_CORTEX_FORCE_KILL"}, codes, conn, bunker
	}
	if s.emergency {
		reasons = append(reasons, "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE")
	}
	if len(codes) > 0 {
		reasons = append(reasons, "REDUCEONLY_OPEN_PERMISSION_LATCHED")
	}
	if bunker {
		reasons = append(reasons, "REDUCEONLY_BUNKER_MODE_ACTIVE")
	}
	if degraded {
		reasons = append(reasons, "REDUCEONLY_RISKSTATE_DEGRADED")
	}
	if s.sessionUnconfirmed {
		reasons = append(reasons, "REDUCEONLY_SESSION_KILL_UNCONFIRMED")
	}
	if len(reasons) > 0 {
		return "ReduceOnly", risk, reasons, codes, conn, bunker
	}
	return "Active", risk, []string{}, codes, conn, bunker
}

func (s *svc) openAllowedLocked(now time.Time) bool {
	mode, _, _, codes, _, _ := s.modeLocked(now)
	return mode == "Active" && len(codes) == 0 && !s.stopping
}

func (s *svc) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	// read the clock under the lock: a feed event stamped between a clock read taken before it and
	// the lock would make ws_event_lag_ms negative
	now := time.Now()
	mode, risk, reasons, codes, conn, bunker := s.modeLocked(now)
	if codes == nil {
		codes = []string{}
	}
	lag := int64(0)
	if s.haveFeed {
		lag = now.Sub(s.lastFeed).Milliseconds()
	}
	n10028 := 0
	for _, t := range s.sessions10028 {
		if now.Sub(t) < 5*time.Minute {
			n10028++
		}
	}
	body := map[string]interface{}{
		"status_schema_version": 1, "contract_version": "5.2", "build_id": buildID,
		"runtime_config_hash": fmt.Sprintf("cfg-wal%d", s.walCap), "supported_profiles": []string{"CSP"},
		"enforced_profile": "CSP", "trading_mode": mode, "risk_state": risk, "bunker_mode_active": bunker,
		"connectivity_degraded": conn, "mode_reasons": reasons,
		"open_permission_blocked_latch": len(codes) > 0, "open_permission_reason_codes": codes,
		"open_permission_requires_reconcile": len(codes) > 0,
		"policy_age_sec":                     (now.UnixMilli() - s.startMs) / 1000, "last_policy_update_ts": s.startMs,
		"f1_cert_state": "PASS", "f1_cert_expires_at": s.startMs + 86400000,
		"disk_used_pct": s.diskPct, "disk_used_last_update_ts_ms": s.diskTs,
		"disk_used_pct_secondary": s.diskPct, "disk_used_secondary_last_update_ts_ms": s.diskTs,
		"mm_util": 0.05, "mm_util_last_update_ts_ms": s.loopTickMs,
		"loop_tick_last_ts_ms": s.loopTickMs, "wal_queue_depth": len(s.walCh),
		"wal_queue_capacity": s.walCap, "wal_queue_enqueue_failures": s.walFailures,
		"atomic_naked_events_24h": 0, "429_count_5m": 0, "10028_count_5m": n10028,
		"deribit_http_p95_ms": s.p95, "ws_event_lag_ms": lag,
		"deployment_environment": "PAPER",
	}
	s.mu.Unlock()
	raw, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Write(raw)
}

// ---------- latch ----------

func (s *svc) setLatchLocked(code string) {
	if e := s.latch[code]; e != nil {
		e.endedMono = 0
		return
	}
	m := monoNow()
	s.latch[code] = &latchEntry{setMono: m}
	s.latchEvts = append(s.latchEvts, map[string]interface{}{"event": "set", "code": code, "mono": m})
	s.fpDirty = true
	log.Printf("latch set %s", code)
}

func (s *svc) endLatchLocked(code string) {
	if e := s.latch[code]; e != nil && e.endedMono == 0 {
		e.endedMono = monoNow()
	}
}

// ---------- REST ----------

type envelope struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

func (s *svc) venueNowMs() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().UnixMilli() + s.clockOffsetMs
}

func (s *svc) recordError(typ, endpoint string, status int) {
	s.mu.Lock()
	s.errCount++
	s.errEvents = append(s.errEvents, errEvent{Type: typ, UTC: utcNow(), Endpoint: endpoint, Status: status})
	if len(s.errEvents) > 500 {
		s.errEvents = s.errEvents[len(s.errEvents)-500:]
	}
	s.fpDirty = true
	s.restDegUntil = time.Now().Add(degradedHold)
	s.mu.Unlock()
}

func classify(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns_failure"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "connection_error"
}

// call does one REST request; err != nil means no answer (transport). Signed requests carry the
// demo header; exp > 0 adds OKX's expTime header.
func (s *svc) call(method, path string, body []byte, signed bool, exp int64) (int, *envelope, error) {
	req, _ := http.NewRequest(method, s.restURL+path, bytes.NewReader(body))
	if body == nil {
		req, _ = http.NewRequest(method, s.restURL+path, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	if signed {
		ts := time.UnixMilli(s.venueNowMs()).UTC().Format("2006-01-02T15:04:05.000Z")
		mac := hmac.New(sha256.New, []byte(s.secret))
		mac.Write([]byte(ts + method + path + string(body)))
		req.Header.Set("OK-ACCESS-KEY", s.apiKey)
		req.Header.Set("OK-ACCESS-SIGN", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		req.Header.Set("OK-ACCESS-TIMESTAMP", ts)
		req.Header.Set("OK-ACCESS-PASSPHRASE", s.pass)
		req.Header.Set("x-simulated-trading", "1")
	}
	if exp > 0 {
		req.Header.Set("expTime", strconv.FormatInt(exp, 10))
	}
	s.mu.Lock()
	s.apiCalls++
	s.mu.Unlock()
	t0 := time.Now()
	resp, err := s.http.Do(req)
	endpoint := strings.SplitN(path, "?", 2)[0]
	if err != nil {
		s.recordError(classify(err), endpoint, 0)
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.recordError(classify(err), endpoint, resp.StatusCode)
		return 0, nil, err
	}
	s.mu.Lock()
	s.latencies = append(s.latencies, float64(time.Since(t0).Microseconds())/1000)
	if len(s.latencies) > 200 {
		s.latencies = s.latencies[len(s.latencies)-200:]
	}
	s.mu.Unlock()
	env := &envelope{}
	_ = json.Unmarshal(raw, env)
	if resp.StatusCode >= 400 {
		s.recordError("http_error", endpoint, resp.StatusCode)
		if env.Code == "50102" {
			go s.resyncClock()
		}
	}
	return resp.StatusCode, env, nil
}

// resyncClock learns the venue's clock offset from GET /api/v5/public/time (unsigned).
func (s *svc) resyncClock() {
	s.mu.Lock()
	if time.Since(s.lastResync) < 150*time.Millisecond {
		s.mu.Unlock()
		return
	}
	s.lastResync = time.Now()
	s.mu.Unlock()
	t0 := time.Now()
	_, env, err := s.call("GET", "/api/v5/public/time", nil, false, 0)
	if err != nil || env.Code != "0" {
		return
	}
	var d []struct {
		Ts string `json:"ts"`
	}
	if json.Unmarshal(env.Data, &d) != nil || len(d) == 0 {
		return
	}
	ts, _ := strconv.ParseInt(d[0].Ts, 10, 64)
	mid := t0.UnixMilli() + time.Since(t0).Milliseconds()/2
	s.mu.Lock()
	s.clockOffsetMs = ts - mid
	s.mu.Unlock()
	log.Printf("clock offset %d ms", ts-mid)
}

// ---------- WAL ----------

func (s *svc) enqueue(rec map[string]interface{}) bool {
	raw, _ := json.Marshal(rec)
	select {
	case s.walCh <- raw:
		return true
	default:
		s.mu.Lock()
		s.walFailures++
		s.walLastFail = time.Now()
		s.mu.Unlock()
		return false
	}
}

func (s *svc) hookLog(hook, event string) {
	line, _ := json.Marshal(map[string]interface{}{"hook": hook, "event": event, "mono": monoNow(), "utc": utcNow()})
	f, err := os.OpenFile(s.hooksLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Printf("hooks log: %v", err)
		return
	}
	f.Write(append(line, '\n'))
	f.Close()
}

// walWriter drains the queue into data/wal.jsonl; while the wal_stall hook file exists it stops.
func (s *svc) walWriter() {
	f, err := os.OpenFile(filepath.Join(s.dataDir, "wal.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatalf("wal: %v", err)
	}
	stallFile := filepath.Join(s.controlDir, "wal_stall")
	for {
		if _, err := os.Stat(stallFile); err == nil {
			if !s.walStalled {
				s.walStalled = true
				s.hookLog("wal_stall", "applied")
			}
			time.Sleep(2 * time.Millisecond)
			continue
		} else if s.walStalled {
			s.walStalled = false
			s.hookLog("wal_stall", "released")
		}
		select {
		case rec := <-s.walCh:
			f.Write(append(rec, '\n'))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// replayWAL turns intents without an outcome into unresolved orders (resolved by query, never re-sent).
func (s *svc) replayWAL() {
	raw, err := os.ReadFile(filepath.Join(s.dataDir, "wal.jsonl"))
	if err != nil {
		return
	}
	open := map[string]unresolved{}
	for _, line := range strings.Split(string(raw), "\n") {
		var r struct {
			T, ClOrdID, Inst, Side string
			Sz                     int
			Exp                    int64
		}
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		switch r.T {
		case "intent":
			open[r.ClOrdID] = unresolved{clOrdID: r.ClOrdID, inst: r.Inst, side: r.Side, sz: r.Sz, expTime: r.Exp}
		case "outcome":
			delete(open, r.ClOrdID)
		}
	}
	for _, u := range open {
		s.unres = append(s.unres, u)
	}
	log.Printf("wal replay: %d intents to resolve by query", len(open))
}

// ---------- orders ----------

type leg struct {
	inst, side string
	sz         int
	reduce     bool
	clOrdID    string
}

func (s *svc) nextClOrdID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clSeq++
	return s.clPrefix + strconv.FormatInt(int64(s.clSeq), 36)
}

func signOf(side string) int {
	if side == "buy" {
		return 1
	}
	return -1
}

func (s *svc) place(legs []leg) {
	defer func() { s.mu.Lock(); s.inflight = false; s.mu.Unlock() }()
	exp := s.venueNowMs() + expTimeMs
	var objs []map[string]interface{}
	for _, l := range legs {
		objs = append(objs, map[string]interface{}{"instId": l.inst, "tdMode": "cross", "clOrdId": l.clOrdID,
			"side": l.side, "ordType": "market", "sz": strconv.Itoa(l.sz), "reduceOnly": l.reduce})
	}
	var body []byte
	path := "/api/v5/trade/order"
	if len(legs) == 1 {
		body, _ = json.Marshal(objs[0])
	} else {
		path = "/api/v5/trade/batch-orders"
		body, _ = json.Marshal(objs)
	}
	_, env, err := s.call("POST", path, body, true, exp)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posSeq++
	if err != nil {
		for _, l := range legs {
			s.unres = append(s.unres, unresolved{clOrdID: l.clOrdID, inst: l.inst, side: l.side, sz: l.sz, expTime: exp})
		}
		return
	}
	var res []struct {
		ClOrdID string `json:"clOrdId"`
		SCode   string `json:"sCode"`
	}
	_ = json.Unmarshal(env.Data, &res)
	accepted := 0
	for i, l := range legs {
		ok := i < len(res) && res[i].SCode == "0"
		if ok {
			accepted++
			s.pos[l.inst] += signOf(l.side) * l.sz // market orders fill whole at once
		} else if i < len(res) && (res[i].SCode == "51169" || res[i].SCode == "51170") {
			s.posSeq = -1 // our view of the position is wrong: refresh it
		}
		out := map[string]interface{}{"t": "outcome", "clOrdId": l.clOrdID, "ok": ok}
		raw, _ := json.Marshal(out)
		select {
		case s.walCh <- raw:
		default:
		}
	}
	if len(legs) == 2 && accepted == 1 && !legs[0].reduce {
		s.emergency = true
		s.flatSince = time.Time{}
		log.Printf("partial fill: one leg of a two-leg order rejected; emergency ReduceOnly")
	}
}

func (s *svc) exposureLocked() int {
	e := 0
	for _, p := range s.pos {
		if p < 0 {
			p = -p
		}
		e += p
	}
	return e
}

// reduceLegs closes |pos| (all=true) or one contract of the largest position.
func (s *svc) reduceLegsLocked(all bool) []leg {
	insts := []string{instA, instB}
	sort.Slice(insts, func(i, j int) bool { return abs(s.pos[insts[i]]) > abs(s.pos[insts[j]]) })
	var legs []leg
	for _, in := range insts {
		p := s.pos[in]
		if p == 0 {
			continue
		}
		side := "sell"
		if p < 0 {
			side = "buy"
		}
		sz := 1
		if all {
			sz = abs(p)
		}
		legs = append(legs, leg{inst: in, side: side, sz: sz, reduce: true})
		if !all {
			break
		}
	}
	return legs
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// trader is the main loop: one decision per tick, at most one order request in flight.
func (s *svc) trader() {
	t := time.NewTicker(tickEvery)
	for range t.C {
		now := time.Now()
		s.mu.Lock()
		s.loopTickMs = now.UnixMilli()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		if s.emergency && s.exposureLocked() == 0 && len(s.unres) == 0 {
			if s.flatSince.IsZero() {
				s.flatSince = now
			} else if now.Sub(s.flatSince) > time.Second && s.posSeq >= 0 {
				s.emergency = false
				log.Printf("flat: emergency ReduceOnly ends")
			}
		}
		busy := s.inflight
		s.mu.Unlock()
		// one journal record per tick, whatever is decided (the WAL sees steady pressure)
		walOK := s.enqueue(map[string]interface{}{"t": "tick", "ms": now.UnixMilli()})
		if busy {
			continue
		}
		s.mu.Lock()
		open := s.openAllowedLocked(now) && walOK
		exp := s.exposureLocked()
		var legs []leg
		if open {
			if exp <= 6 {
				s.rampUp = true
			} else if exp >= 10 {
				s.rampUp = false
			}
			if s.rampUp {
				legs = []leg{{inst: instA, side: "buy", sz: 1}, {inst: instB, side: "sell", sz: 1}}
			} else {
				legs = s.reduceLegsLocked(false)
			}
		} else if exp > 0 && s.posSeq >= 0 {
			legs = s.reduceLegsLocked(s.emergency || s.killed)
		}
		if len(legs) > 0 {
			s.inflight = true
		}
		s.mu.Unlock()
		if len(legs) == 0 {
			s.mu.Lock()
			if !s.readInflight { // keep calling in every mode, one price read at a time
				s.readInflight = true
				go func() {
					s.call("GET", "/api/v5/market/ticker?instId="+instA, nil, false, 0)
					s.mu.Lock()
					s.readInflight = false
					s.mu.Unlock()
				}()
			}
			s.mu.Unlock()
			continue
		}
		for i := range legs {
			legs[i].clOrdID = s.nextClOrdID()
			rec := map[string]interface{}{"t": "intent", "clOrdId": legs[i].clOrdID, "inst": legs[i].inst,
				"side": legs[i].side, "sz": legs[i].sz, "exp": s.venueNowMs() + expTimeMs}
			if !s.enqueue(rec) && !legs[i].reduce {
				open = false // an OPEN that could not be journalled is not sent
			}
		}
		if !legs[0].reduce {
			s.mu.Lock()
			open = open && s.openAllowedLocked(time.Now())
			s.mu.Unlock()
			if !open {
				s.mu.Lock()
				s.inflight = false
				s.mu.Unlock()
				continue
			}
		}
		go s.place(legs)
	}
}

// reconciler clears ended latch conditions after a positions + orders-pending read that began after
// they ended; it also refreshes positions when our view is stale.
func (s *svc) reconciler() {
	for {
		time.Sleep(50 * time.Millisecond)
		s.mu.Lock()
		stopping := s.stopping
		needed := false
		for _, e := range s.latch {
			if e.endedMono > 0 {
				needed = true
			}
		}
		if s.posSeq < 0 || (s.emergency && s.exposureLocked() == 0) {
			needed = true
		}
		seq := s.posSeq
		s.mu.Unlock()
		// no latch clears on a feed that has not delivered since this process started, or is stale:
		// a restart into a frozen feed must not clear its restart latch before the stale one can set
		s.mu.Lock()
		inputsOK := s.feedSeen && !s.feedStale
		s.mu.Unlock()
		if stopping || !needed || !inputsOK {
			continue
		}
		t0 := monoNow()
		_, penv, err := s.call("GET", "/api/v5/account/positions?instType=SWAP", nil, true, 0)
		if err != nil || penv.Code != "0" {
			time.Sleep(150 * time.Millisecond)
			continue
		}
		_, oenv, err := s.call("GET", "/api/v5/trade/orders-pending?instType=SWAP", nil, true, 0)
		if err != nil || oenv.Code != "0" {
			time.Sleep(150 * time.Millisecond)
			continue
		}
		var ps []struct {
			InstID string `json:"instId"`
			Pos    string `json:"pos"`
		}
		_ = json.Unmarshal(penv.Data, &ps)
		s.mu.Lock()
		if s.posSeq == seq && !s.inflight {
			s.pos = map[string]int{}
			for _, p := range ps {
				n, _ := strconv.ParseFloat(p.Pos, 64)
				s.pos[p.InstID] = int(n)
			}
			s.posSeq = 0
		}
		if len(s.unres) == 0 {
			for code, e := range s.latch {
				if e.endedMono > 0 && e.endedMono < t0 {
					delete(s.latch, code)
					s.latchEvts = append(s.latchEvts, map[string]interface{}{"event": "clear", "code": code, "mono": monoNow()})
					s.fpDirty = true
					log.Printf("latch cleared %s after reconciliation", code)
				}
			}
		}
		s.mu.Unlock()
	}
}

// resolver looks up orders whose request got no answer; "not found" is final only after expTime + grace.
func (s *svc) resolver() {
	for {
		time.Sleep(250 * time.Millisecond)
		s.mu.Lock()
		list := append([]unresolved(nil), s.unres...)
		s.mu.Unlock()
		for _, u := range list {
			sentAt := s.venueNowMs()
			_, env, err := s.call("GET", "/api/v5/trade/order?instId="+u.inst+"&clOrdId="+u.clOrdID, nil, true, 0)
			if err != nil {
				continue
			}
			done := false
			s.mu.Lock()
			if env.Code == "0" {
				var d []struct {
					State, AccFillSz, Side string
				}
				_ = json.Unmarshal(env.Data, &d)
				if len(d) > 0 && (d[0].State == "filled" || d[0].State == "canceled") {
					filled, _ := strconv.ParseFloat(d[0].AccFillSz, 64)
					s.pos[u.inst] += signOf(u.side) * int(filled)
					done = true
				}
			} else if env.Code == "51603" && sentAt > u.expTime+notFoundGrace {
				done = true // the request can no longer be executed: its expTime has passed
			}
			if done {
				for i, x := range s.unres {
					if x.clOrdID == u.clOrdID {
						s.unres = append(s.unres[:i], s.unres[i+1:]...)
						break
					}
				}
				s.posSeq = -1
				raw, _ := json.Marshal(map[string]interface{}{"t": "outcome", "clOrdId": u.clOrdID, "resolved": true})
				select {
				case s.walCh <- raw:
				default:
				}
			}
			s.mu.Unlock()
		}
	}
}

// ---------- WebSockets ----------

var dialer = &websocket.Dialer{Proxy: nil, HandshakeTimeout: 2 * time.Second}

func (s *svc) publicWS() {
	for {
		c, _, err := dialer.Dial(s.wsPub, nil)
		if err != nil {
			s.recordError("ws_error", "/ws/v5/public", 0)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.pubConn = c
		s.lastSeq = 0
		s.lastTradeID = 0
		s.mu.Unlock()
		sub := `{"op":"subscribe","args":[{"channel":"books","instId":"` + instA + `"},{"channel":"trades","instId":"` + instA + `"}]}`
		c.WriteMessage(websocket.TextMessage, []byte(sub))
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				break
			}
			s.onPublic(c, msg)
		}
		c.Close()
		s.recordError("ws_error", "/ws/v5/public", 0)
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *svc) onPublic(c *websocket.Conn, msg []byte) {
	var m struct {
		Arg struct {
			Channel string `json:"channel"`
		} `json:"arg"`
		Action string            `json:"action"`
		Event  string            `json:"event"`
		Data   []json.RawMessage `json:"data"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Event != "" || len(m.Data) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Arg.Channel {
	case "books":
		var d struct {
			SeqID     int64 `json:"seqId"`
			PrevSeqID int64 `json:"prevSeqId"`
		}
		json.Unmarshal(m.Data[0], &d)
		if m.Action == "snapshot" {
			s.lastSeq = d.SeqID
			if s.bookGap {
				s.bookGap = false
				s.endLatchLocked("WS_BOOK_GAP_RECONCILE_REQUIRED")
			}
		} else if s.bookGap {
			return // waiting for the new snapshot
		} else if s.lastSeq != 0 && d.PrevSeqID != s.lastSeq {
			log.Printf("book gap: prevSeqId %d, last seqId %d", d.PrevSeqID, s.lastSeq)
			s.bookGap = true
			s.setLatchLocked("WS_BOOK_GAP_RECONCILE_REQUIRED")
			go func() {
				c.WriteMessage(websocket.TextMessage, []byte(`{"op":"unsubscribe","args":[{"channel":"books","instId":"`+instA+`"}]}`))
				c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","args":[{"channel":"books","instId":"`+instA+`"}]}`))
			}()
		} else {
			s.lastSeq = d.SeqID
		}
	case "trades":
		for _, raw := range m.Data {
			var d struct {
				TradeID string `json:"tradeId"`
				Count   string `json:"count"`
			}
			json.Unmarshal(raw, &d)
			id, _ := strconv.ParseInt(d.TradeID, 10, 64)
			cnt, _ := strconv.ParseInt(d.Count, 10, 64)
			if cnt < 1 {
				cnt = 1
			}
			if s.seenTrades[id] {
				s.dupDropped++
				s.fpDirty = true
				continue
			}
			s.seenTrades[id] = true
			if len(s.seenTrades) > 5000 {
				s.seenTrades = map[int64]bool{id: true}
			}
			if s.lastTradeID != 0 && id-cnt != s.lastTradeID {
				log.Printf("trades gap: tradeId %d count %d after %d", id, cnt, s.lastTradeID)
				s.tradesGap = true
				s.setLatchLocked("WS_TRADES_GAP_RECONCILE_REQUIRED")
			} else if s.tradesGap {
				s.tradesGap = false
				s.endLatchLocked("WS_TRADES_GAP_RECONCILE_REQUIRED")
			}
			if id > s.lastTradeID {
				s.lastTradeID = id
			}
			s.processed++
		}
	default:
		return
	}
	s.haveFeed, s.feedSeen = true, true
	s.lastFeed = now
	if s.feedStale {
		s.feedStale = false
		s.endLatchLocked("WS_DATA_STALE_RECONCILE_REQUIRED")
	}
}

// staleWatch latches when books/trades fall silent for longer than staleAfter.
func (s *svc) staleWatch() {
	for {
		time.Sleep(10 * time.Millisecond)
		s.mu.Lock()
		if s.haveFeed && !s.feedStale && time.Since(s.lastFeed) > staleAfter {
			s.feedStale = true
			s.setLatchLocked("WS_DATA_STALE_RECONCILE_REQUIRED")
			log.Printf("market data stale")
		}
		s.mu.Unlock()
	}
}

func (s *svc) onTermination(why string) {
	s.mu.Lock()
	s.sessions10028 = append(s.sessions10028, time.Now())
	s.sessionUnconfirmed = true
	s.setLatchLocked("SESSION_TERMINATION_RECONCILE_REQUIRED")
	s.loggedIn = false
	s.mu.Unlock()
	log.Printf("session terminated (%s)", why)
}

func (s *svc) privateWS() {
	backoff := 100 * time.Millisecond
	for {
		c, _, err := dialer.Dial(s.wsPriv, nil)
		if err != nil {
			s.recordError("ws_error", "/ws/v5/private", 0)
			time.Sleep(backoff)
			continue
		}
		ts := strconv.FormatInt(s.venueNowMs()/1000, 10)
		mac := hmac.New(sha256.New, []byte(s.secret))
		mac.Write([]byte(ts + "GET" + "/users/self/verify"))
		login, _ := json.Marshal(map[string]interface{}{"op": "login", "args": []map[string]string{{
			"apiKey": s.apiKey, "passphrase": s.pass, "timestamp": ts,
			"sign": base64.StdEncoding.EncodeToString(mac.Sum(nil))}}})
		c.WriteMessage(websocket.TextMessage, login)
		noticed := false
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == 4007 {
					s.onTermination("close 4007: API key revoked")
				} else {
					s.mu.Lock()
					s.loggedIn = false
					s.mu.Unlock()
				}
				break
			}
			var m struct{ Event, Code, Msg string }
			if json.Unmarshal(msg, &m) != nil {
				continue
			}
			switch {
			case m.Event == "login" && m.Code == "0":
				s.mu.Lock()
				s.loggedIn = true
				if s.sessionUnconfirmed {
					s.sessionUnconfirmed = false
					s.endLatchLocked("SESSION_TERMINATION_RECONCILE_REQUIRED")
				}
				s.mu.Unlock()
				backoff = 100 * time.Millisecond
				log.Printf("private session logged in")
			case m.Event == "notice" && m.Code == "64008" && !noticed:
				noticed = true
				s.onTermination("notice 64008")
			case m.Event == "error":
				log.Printf("private ws error %s %s", m.Code, m.Msg)
				if m.Code == "60006" || m.Code == "60004" {
					go s.resyncClock()
				}
			}
		}
		c.Close()
		time.Sleep(backoff)
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// ---------- files ----------

func writeAtomic(path string, v interface{}) {
	raw, _ := json.MarshalIndent(v, "", " ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		log.Printf("write %s: %v", path, err)
		return
	}
	os.Rename(tmp, path)
}

func (s *svc) writeFingerprint() {
	s.mu.Lock()
	fp := map[string]interface{}{
		"run_id": s.runID, "api_calls": s.apiCalls, "error_count": s.errCount,
		"error_events": append([]errEvent{}, s.errEvents...),
		"trades":       map[string]int{"processed": s.processed, "duplicates_dropped": s.dupDropped},
		"latch_events": append([]map[string]interface{}{}, s.latchEvts...),
	}
	s.fpDirty = false
	s.mu.Unlock()
	writeAtomic(filepath.Join(s.dataDir, "execution_fingerprint.json"), fp)
}

func (s *svc) telemetry() {
	last := time.Time{}
	for {
		time.Sleep(20 * time.Millisecond)
		s.mu.Lock()
		dirty := s.fpDirty
		if len(s.latencies) > 0 {
			l := append([]float64(nil), s.latencies...)
			sort.Float64s(l)
			s.p95 = l[len(l)*95/100]
		}
		s.mu.Unlock()
		if dirty || time.Since(last) > 300*time.Millisecond {
			s.writeFingerprint()
			var st syscall.Statfs_t
			if syscall.Statfs(s.dataDir, &st) == nil && st.Blocks > 0 {
				s.mu.Lock()
				s.diskPct = 1 - float64(st.Bavail)/float64(st.Blocks)
				s.diskTs = time.Now().UnixMilli()
				s.mu.Unlock()
			}
			last = time.Now()
		}
	}
}

func (s *svc) manifest(status string, stopTime, reason interface{}) {
	var end interface{}
	if status != "running" {
		end = utcNow()
	}
	writeAtomic(filepath.Join(s.dataDir, "run_manifest.json"), map[string]interface{}{
		"run_id": s.runID, "git_commit": gitCommit, "build_id": buildID,
		"docker_image_tag": env("DOCKER_IMAGE_TAG", "not-applicable:not-running-in-a-container"),
		"start_utc":        s.startUTC, "end_utc": end, "status": status,
		"stop_detected": stopTime != nil, "stop_time": stopTime, "stop_reason": reason,
	})
}

// controlWatch polls the STOP file and the emit_reason_token hook every 5 ms.
func (s *svc) controlWatch() {
	stopFile := filepath.Join(s.controlDir, "STOP")
	tokenFile := filepath.Join(s.controlDir, "emit_reason_token")
	for {
		time.Sleep(5 * time.Millisecond)
		if _, err := os.Stat(stopFile); err == nil {
			at := utcNow()
			s.mu.Lock()
			s.stopping = true
			s.mu.Unlock()
			log.Printf("STOP file seen: stopping")
			s.shutdown("interrupted", at, "stop_file")
		}
		if raw, err := os.ReadFile(tokenFile); err == nil {
			os.Remove(tokenFile) // one-shot: consumed
			tok := strings.TrimSpace(string(raw))
			if !s.registry[tok] {
				s.mu.Lock()
				s.killed = true
				s.mu.Unlock()
				s.hookLog("emit_reason_token", "applied")
				log.Printf("unregistered reason token %q: Kill until restarted", tok)
			} else {
				log.Printf("registered reason token %q ignored", tok)
			}
		}
	}
}

func (s *svc) shutdown(status string, stopTime, reason interface{}) {
	s.writeFingerprint()
	s.manifest(status, stopTime, reason)
	os.Remove(filepath.Join(s.dataDir, "running.marker"))
	log.Printf("exit 0 (%s)", status)
	os.Exit(0)
}

func main() {
	s := newSvc()
	for _, d := range []string{s.dataDir, s.controlDir} {
		os.MkdirAll(d, 0o755)
	}
	logFile := env("LOG_FILE", filepath.Join(s.dataDir, "service.log"))
	if f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		log.SetOutput(io.MultiWriter(os.Stderr, f))
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	marker := filepath.Join(s.dataDir, "running.marker")
	if _, err := os.Stat(marker); err == nil {
		// the previous run did not stop cleanly: no OPEN until reconciled, from the first status answer
		s.latch["RESTART_RECONCILE_REQUIRED"] = &latchEntry{setMono: monoNow(), endedMono: monoNow()}
		s.latchEvts = append(s.latchEvts, map[string]interface{}{"event": "set", "code": "RESTART_RECONCILE_REQUIRED", "mono": monoNow()})
		s.replayWAL()
		log.Printf("unclean stop detected: RESTART_RECONCILE_REQUIRED")
	}
	os.WriteFile(marker, []byte(s.runID), 0o644)
	s.loopTickMs = time.Now().UnixMilli()
	// silence is counted from the start: a service (re)started into a frozen feed has stale market
	// data, not none to judge (explore_1 found a restart during a freeze clearing the latch too early)
	s.haveFeed, s.lastFeed = true, time.Now()
	s.manifest("running", nil, nil)
	s.writeFingerprint()

	ln, err := net.Listen("tcp", net.JoinHostPort(env("HOST", "127.0.0.1"), env("PORT", "8080")))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/status", s.handleStatus)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	go http.Serve(ln, mux)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.shutdown("interrupted", nil, "signal")
	}()

	go s.controlWatch()
	go s.walWriter()
	go s.telemetry()
	s.resyncClock()
	go s.publicWS()
	go s.privateWS()
	go s.staleWatch()
	go s.reconciler()
	go s.resolver()
	s.trader()
	select {}
}
