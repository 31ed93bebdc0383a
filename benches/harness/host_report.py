"""The "one keygen client per host" part of the report: host.py's two runs
(private, shared) side by side, each of issue 12's targets quoted met or
missed. Imported by report.py; `host_section(load)` takes its JSON loader
and returns (markdown lines, targets) or ([], []) when host.py did not run.
"""


def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _fmt(x, unit="", digits=0):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}{unit}"
    return f"{x:,}{unit}"


def _mib(b):
    return "–" if b is None else f"{b / 1048576:,.1f} MiB"


def _ms(x):
    return "–" if x is None else f"{x:,.0f} ms"


def host_section(load):
    runs = {m: load(f"host_{m}.json") for m in ("private", "shared")}
    if not any(runs.values()):
        return [], []
    pv, sh = runs["private"] or {}, runs["shared"] or {}

    def conn_idle(r):
        return _get(r, "idle", "connections", "max")

    def conn_load(r):
        vals = [_get(x, "connections", "max") for x in r.get("rounds", [])]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def polls(r):
        return _get(r, "idle", "feed_polls_per_s")

    def per_key(r):
        return _get(r, "queries", "per_key_per_ttl")

    def hit(r):
        vals = [x.get("hit_ratio") for x in r.get("rounds", []) if x.get("hit_ratio") is not None]
        return min(vals) if vals else None

    def takeover(r):
        vals = [k.get("takeover_ms") for k in r.get("kill_revocations", [])]
        vals = [v for v in vals if v is not None]
        if _get(r, "kill_usage", "takeover_ms") is not None:
            vals.append(r["kill_usage"]["takeover_ms"])
        return max(vals) if vals else None

    mem_private = _get(pv, "memory", "one_process_bytes_for_keys")
    # The region is allocated in full when it is created, so the host's cost
    # is its memory plus whatever the processes grew while caching the keys.
    region = _get(sh, "memory", "region_allocated_bytes")
    growth = _get(sh, "memory", "host_pss_delta_bytes")
    mem_shared = None if region is None else region + (growth or 0)

    def dropped(r):
        v = sum(x["delta"].get("validations", 0) for x in r.get("rounds", []))
        d = sum(x["delta"].get("usage_dropped", 0) for x in r.get("rounds", []))
        return f"{d:,} of {v:,} ({d / v:.1%})" if v else "–"
    ku = sh.get("kill_usage") or {}
    lost = None
    if ku:
        lost = max(0, (ku.get("http_answered") or 0) - (ku.get("http_rows") or 0)) + (ku.get("c_lost") or 0)

    workers, cprocs, keys = sh.get("workers") or pv.get("workers"), sh.get("c_procs") or pv.get("c_procs"), sh.get("keys") or pv.get("keys")
    L = [f"One host: php-fpm with {workers} workers behind nginx plus {cprocs} C processes, one MariaDB, "
         f"{_fmt(keys)} keys at random; per-process mode (`shared_cache = Off`) and shared mode, one after the other "
         "in the same run (benches/harness/host.py).", ""]
    L.append("| measure | per process | shared host region | target (shared) |")
    L.append("|---|---|---|---|")
    rows = [
        ("connections held by heratio-keys, idle (max)", _fmt(conn_idle(pv)), _fmt(conn_idle(sh)), "≤ 2"),
        ("connections under load (max)", _fmt(conn_load(pv)), _fmt(conn_load(sh)), "≤ 4"),
        ("feed polls per second, whole host (idle)", _fmt(polls(pv), digits=1), _fmt(polls(sh), digits=1), "2"),
        ("store queries per distinct key per 60 s TTL", _fmt(per_key(pv), digits=2), _fmt(per_key(sh), digits=2), "≤ 1"),
        ("cache hit ratio, load rounds (lowest)", _fmt(hit(pv) and hit(pv) * 100, " %", 2), _fmt(hit(sh) and hit(sh) * 100, " %", 2), "≥ 99 %"),
        (f"memory for {_fmt(_get(sh, 'memory', 'keys') or _get(pv, 'memory', 'keys'))} cached keys",
         f"{_mib(mem_private)} in each process", f"{_mib(mem_shared)} for the host (region {_mib(region)}, Pss growth {_mib(growth)})",
         "≤ 1.5× one process's"),
        ("usage records dropped during the load rounds (queue full)", dropped(pv), dropped(sh), "0 (rows exact)"),
        ("revocation seen by every process: p50 / p99 / max",
         " / ".join(_ms(_get(pv, "revocation", k)) for k in ("p50_ms", "p99_ms", "max_ms")),
         " / ".join(_ms(_get(sh, "revocation", k)) for k in ("p50_ms", "p99_ms", "max_ms")), "p99 ≤ 1 s"),
        ("revocations missed (incl. with the leader SIGKILLed)",
         _fmt((_get(pv, "revocation", "missed") or 0) + sum(k.get("missed", 0) for k in pv.get("kill_revocations", []))),
         _fmt((_get(sh, "revocation", "missed") or 0) + sum(k.get("missed", 0) for k in sh.get("kill_revocations", []))), "0"),
        ("leader killed: takeover (slowest)", "–", _ms(takeover(sh)), "within a poll interval"),
        ("leader killed under load: usage rows missing / counted as dropped", "–",
         f"{_fmt(lost)} / {_fmt(ku.get('host_dropped'))}" if ku else "–", "missing ≤ dropped"),
    ]
    for r in rows:
        L.append("| " + " | ".join(r) + " |")

    php = load("php_ext_shared.json") or {}
    c_big = load("c_sqlite_big_shared.json") or {}
    floors = load("floors_big.json") or {}
    floor_sum = floors.get("sum_ns")
    targets = [
        ("host: connections idle / under load", "≤ 2 / ≤ 4",
         f"{_fmt(conn_idle(sh))} / {_fmt(conn_load(sh))} (per process: {_fmt(conn_idle(pv))} / {_fmt(conn_load(pv))})",
         conn_idle(sh) is not None and conn_idle(sh) <= 2 and conn_load(sh) is not None and conn_load(sh) <= 4),
        ("host: feed polls per second", "2", f"{_fmt(polls(sh), digits=1)} (per process: {_fmt(polls(pv), digits=1)})",
         polls(sh) is not None and polls(sh) <= 2.2),
        ("host: store queries per distinct key per TTL", "≤ 1", f"{_fmt(per_key(sh), digits=2)} (per process: {_fmt(per_key(pv), digits=2)})",
         per_key(sh) is not None and per_key(sh) <= 1.0),
        ("host: cache hit ratio after warm-up", "≥ 99 %", f"{_fmt(hit(sh) and hit(sh) * 100, ' %', 2)} (per process: {_fmt(hit(pv) and hit(pv) * 100, ' %', 2)})",
         hit(sh) is not None and hit(sh) >= 0.99),
        ("host: memory for the cached keys vs one process's cache", "≤ 1.5×",
         f"{_mib(mem_shared)} vs {_mib(mem_private)}" + (f" ({mem_shared / mem_private:.2f}×)" if mem_shared and mem_private else ""),
         bool(mem_shared and mem_private) and mem_shared <= 1.5 * mem_private),
        ("host: PHP cached validation, shared region", "p50 ≤ 1 µs", _fmt(php.get("p50_ns"), " ns"),
         php.get("p50_ns") is not None and php["p50_ns"] <= 1000),
        ("host: C cached validation at 100k keys, shared region, vs SHA-256 + HashMap get", "≤ 2×",
         f"{_fmt(c_big.get('p50_ns'), ' ns')} vs {_fmt(floor_sum, ' ns', 0)}" + (f" ({c_big['p50_ns'] / floor_sum:.2f}×)" if c_big.get("p50_ns") and floor_sum else ""),
         bool(c_big.get("p50_ns") and floor_sum) and c_big["p50_ns"] <= 2 * floor_sum),
        ("host: revocation p99 at every process, none missed (leader killed too)", "≤ 1 s, 0",
         f"{_ms(_get(sh, 'revocation', 'p99_ms'))}, missed {_fmt((_get(sh, 'revocation', 'missed') or 0) + sum(k.get('missed', 0) for k in sh.get('kill_revocations', [])))}",
         _get(sh, "revocation", "p99_ms") is not None and sh["revocation"]["p99_ms"] <= 1000
         and sh["revocation"]["missed"] == 0 and all(k.get("missed", 0) == 0 for k in sh.get("kill_revocations", []))),
    ]
    return L, targets
