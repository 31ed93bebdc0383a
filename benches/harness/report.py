#!/usr/bin/env python3
"""Report of one harness run: ratios, targets, summary.md, results.json and
the chart validation-cost.svg (plain SVG, no packages needed).

Usage: report.py RESULTS_DIR OUT_DIR CRITERION_DIR USE_CRITERION(0|1) SMOKE(0|1) [DOC]
With DOC (docs/BENCHMARKS.md), the summary replaces the text between its
`<!-- results:begin -->` and `<!-- results:end -->` markers.
Exit status 0 when everything needed was read (targets missed are reported,
not failed: the smoke run checks correctness, not speed)."""

import glob
import json
import math
import os
import re
import sys

from host_report import host_section

res, out, crit_dir, use_crit, smoke = sys.argv[1:6]
use_crit, smoke = use_crit == "1", smoke == "1"


def load(name):
    p = os.path.join(res, name)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wrk(name):
    """The median round (by requests/s) of an endpoint, with every round's
    requests/s."""
    rounds = [r for r in (wrk_file(p) for p in sorted(glob.glob(os.path.join(res, f"wrk_{name}_[0-9]*.txt")))) if r]
    if not rounds:
        return None
    rounds.sort(key=lambda r: r["rps"])
    med = dict(rounds[(len(rounds) - 1) // 2])
    med["rounds_rps"] = [r["rps"] for r in rounds]
    return med


def wrk_file(p):
    """requests/s and latency percentiles (ns) from `wrk --latency` output."""
    try:
        text = open(p).read()
    except OSError:
        return None
    unit = {"us": 1e3, "ms": 1e6, "s": 1e9}
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return None
    r["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            r[f"p{pct}_ns"] = float(m.group(1)) * unit[m.group(2)]
    m = re.search(r"(\d+) requests in", text)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    r["cpu_us_per_request"] = cpu_per_request(p, r["requests"])
    return r


def cpu_per_request(p, requests):
    """CPU µs per request of each serving component in one wrk round, from
    the tick counts cpu.py took around it (10 ms ticks: ±20 ms a round)."""
    try:
        t0, t1 = (json.load(open(f"{p}.cpu{i}")) for i in (0, 1))
    except (OSError, ValueError):
        return None
    if not requests:
        return None
    d = {k: (t1.get(k, 0) - t0.get(k, 0)) * 1e4 / requests for k in t1}
    out = {"fpm": sum(v for k, v in d.items() if k.startswith("fpm:")),
           "nginx": d.get("nginx", 0.0), "machine": d.get("machine_busy", 0.0)}
    if "mariadb" in d:
        out["mariadb"] = d["mariadb"]
    out["rest"] = out["machine"] - out["fpm"] - out["nginx"] - out.get("mariadb", 0.0)
    return out


def http_stats(name="http_stats.txt"):
    """Sum of the last heratio_keys_stats() of each FPM worker."""
    workers = {}
    try:
        text = open(os.path.join(res, name)).read()
    except OSError:
        return None
    for m in re.finditer(r"\{.*?\}\}", text):
        try:
            d = json.loads(m.group(0))
        except ValueError:
            continue
        prev = workers.get(d["pid"])
        if prev is None or d["stats"].get("validations", 0) >= prev.get("validations", 0):
            workers[d["pid"]] = d["stats"]
    if not workers:
        return None
    tot = {"workers": len(workers)}
    for k in ("validations", "cache_hits", "cache_misses", "usage_queued", "usage_written", "usage_dropped"):
        tot[k] = sum(int(s.get(k) or 0) for s in workers.values())
    return tot


def criterion():
    found = {}
    if not use_crit:
        return found
    for bj in glob.glob(os.path.join(crit_dir, "**", "new", "benchmark.json"), recursive=True):
        try:
            b = json.load(open(bj))
            e = json.load(open(os.path.join(os.path.dirname(bj), "estimates.json")))
        except (OSError, ValueError):
            continue
        found[b["full_id"]] = e["median"]["point_estimate"]
    return found


def ns(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} ms"
    if x >= 1e3:
        return f"{x / 1e3:.2f} µs"
    return f"{x:.0f} ns"


def ratio(a, b):
    return a / b if a and b else None


def fx(r):
    return f"{r:,.0f}×" if r and r >= 10 else (f"{r:.1f}×" if r else "–")


machine = open(os.path.join(res, "machine.txt")).read() if os.path.exists(os.path.join(res, "machine.txt")) else ""
loads = open(os.path.join(res, "loads.txt")).read() if os.path.exists(os.path.join(res, "loads.txt")) else ""
R = {
    "php_baseline": load("php_baseline.json"),
    "php_ext": load("php_ext.json"),
    "c_mariadb": load("c_mariadb.json"),
    "c_sqlite_big": load("c_sqlite_big.json"),
    "revocation_sqlite": load("revocation_sqlite.json"),
    "revocation_mysql": load("revocation_mysql.json"),
    "queries_sqlite": load("queries_sqlite.json"),
    "queries_mysql": load("queries_mysql.json"),
    "usage_rate": [u for u in (load(os.path.basename(f)) for f in sorted(glob.glob(os.path.join(res, "usage_rate_*.json")))) if u],
    "http_ext_workers": http_stats(),
    "http_ext_workers_after_warmup": http_stats("http_stats_warm.txt"),
    "memory": load("memory.json"),
    "usage_cost": load("usage_cost.json"),
    "wrk": {ep: wrk(ep) for ep in ("baseline", "ext", "ext_nolog", "noauth")},
    "php_hot": {m: load(f"php_hot_{m}.json") for m in ("shared", "private")},
    "criterion_median_ns": criterion(),
}
need = ["php_baseline", "php_ext", "c_mariadb", "c_sqlite_big"]
missing = [k for k in need if R[k] is None]

base = (R["php_baseline"] or {}).get("p50_ns")
ext = R["php_ext"] or {}
ext_p50, ext_pass = ext.get("p50_ns"), ext.get("pass_mean_median_ns")
c10, c100 = R["c_mariadb"] or {}, R["c_sqlite_big"] or {}
crit = R["criterion_median_ns"]
w = R["wrk"]

ratios = {
    "baseline_over_php_ext_p50": ratio(base, ext_p50),
    "baseline_over_php_ext_pass_mean": ratio(base, ext_pass),
    "baseline_over_c_p50": ratio(base, c10.get("p50_ns")),
    "http_rps_ext_over_baseline": ratio((w["ext"] or {}).get("rps"), (w["baseline"] or {}).get("rps")),
    "http_p50_baseline_over_ext": ratio((w["baseline"] or {}).get("p50_ns"), (w["ext"] or {}).get("p50_ns")),
    "http_p99_baseline_over_ext": ratio((w["baseline"] or {}).get("p99_ns"), (w["ext"] or {}).get("p99_ns")),
}
# Machine time a request costs beyond the no-auth floor (1/rps difference,
# the whole 2-core machine: wrk, nginx, php-fpm and MariaDB together).
added = {}
if w["noauth"]:
    for ep in ("baseline", "ext", "ext_nolog"):
        if w[ep]:
            added[ep] = max(0.0, 1e9 / w[ep]["rps"] - 1e9 / w["noauth"]["rps"])
R["http_added_ns_per_request"] = added


def http_sets():
    """Per key set (`--http-keys`): the extension with the usage log on and
    off against the floor of the same rounds."""
    rows = []
    try:
        lines = open(os.path.join(res, "http_sets.txt")).read().splitlines()
    except OSError:
        return rows
    floor = (w["noauth"] or {}).get("rps")
    for line in lines:
        k, _, sfx = line.partition(" ")
        row = {"keys": int(k)}
        for ep in ("ext", "ext_nolog"):
            x = wrk(ep + sfx.strip())
            if x and floor:
                row[ep] = {"rps": x["rps"], "rounds_rps": x["rounds_rps"], "of_floor": x["rps"] / floor,
                           "added_ns": max(0.0, 1e9 / x["rps"] - 1e9 / floor)}
        rows.append(row)
    return rows


R["http_sets"] = http_sets()
R["ratios"] = ratios

rev = [R[f"revocation_{b}"] for b in ("sqlite", "mysql") if R[f"revocation_{b}"]]
qs = [R[f"queries_{b}"] for b in ("sqlite", "mysql") if R[f"queries_{b}"]]
c100_median = c100.get("p50_ns")
crit100 = crit.get("validate/cached/100000_keys")
targets = [
    ("C cached validation, median at 100k keys", "≤ 300 ns",
     f"{ns(c100_median)} per call (p50, timer incl.), {ns(c100.get('pass_mean_median_ns'))} pass mean"
     + (f"; Rust core {ns(crit100)} (criterion)" if crit100 else ""),
     c100_median is not None and c100_median <= 300),
    ("PHP cached validation", "≤ 1 µs",
     f"{ns(ext_p50)} per call (p50, hrtime incl.), {ns(ext_pass)} pass mean",
     ext_p50 is not None and ext_p50 <= 1000),
    ("speed-up over the PDO baseline, per validation", "≥ 200×",
     f"{fx(ratios['baseline_over_php_ext_p50'])} (PHP p50), {fx(ratios['baseline_over_php_ext_pass_mean'])} (PHP pass mean), {fx(ratios['baseline_over_c_p50'])} (C)",
     (ratios["baseline_over_php_ext_p50"] or 0) >= 200),
    ("revocation seen by another process, p99", "≤ 1 s",
     ", ".join(f"{r['backend']} {r['p99_ms']:.0f} ms (max {r['max_ms']:.0f})" for r in rev) or "–",
     bool(rev) and all(r["p99_ms"] <= 1000 and r["not_seen_within_15s"] == 0 for r in rev)),
    ("store queries per malformed key", "0",
     ", ".join(f"{q['backend']} {q['malformed_store_queries']} per {q['malformed']:,}" for q in qs) or "–",
     bool(qs) and all(q["malformed_store_queries"] == 0 for q in qs)),
    ("store queries for unknown keys", "≤ 1 per distinct digest per negative TTL",
     ", ".join(f"{q['backend']} {q['unknown_store_queries']:,} for {q['unknown']:,} ({q['unknown_distinct']:,} distinct)" for q in qs) or "–",
     bool(qs) and all(q["unknown_store_queries"] <= q["unknown_distinct"] for q in qs)),
]
hot_set = min(R["http_sets"], key=lambda r: r["keys"]) if R["http_sets"] else {}
for ep, goal, label in (("ext_nolog", 0.97, "off"), ("ext", 0.92, "on")):
    x = hot_set.get(ep)
    targets.append((f"HTTP, {hot_set.get('keys', '?')} hot keys, usage log {label}: share of the no-auth floor's requests/s",
                    f"≥ {goal:.0%}", f"{x['of_floor']:.1%} ({x['rps']:,.0f} req/s, {ns(x['added_ns'])} added per request)" if x else "–",
                    bool(x) and x["of_floor"] >= goal))
ph = R["php_hot"].get("shared")
targets.append(("`heratio_keys_authenticate` on a hot key vs `hash('sha256')`, same PHP process", "≤ 2×",
                f"{ph['ratio']:.2f}× ({ns(ph['authenticate_ns'])} vs {ns(ph['hash_sha256_ns'])}, shared cache)" if ph else "–",
                bool(ph) and ph["ratio"] <= 2))
host_lines, host_targets = host_section(load)
targets += host_targets
R["host"] = {m: load(f"host_{m}.json") for m in ("private", "shared")}
R["targets"] = [{"what": t[0], "target": t[1], "result": t[2], "met": t[3]} for t in targets]

# ---------------------------------------------------------------- summary
L = []
L.append(f"Run: {'smoke (few iterations: figures are not meaningful)' if smoke else 'full'}")
L.append("")
L.append("Machine and versions:")
L.append("")
L.append("```")
L.append(machine.strip())
L.append("```")
L.append("")
L.append("Load average (1, 5, 15 min) at the start of each step:")
L.append("")
L.append("```")
L.append(loads.strip())
L.append("```")
L.append("")
L.append("### Cost of one validation, same keys, same MariaDB")
L.append("")
L.append("| path | keys | p50 | p99 | mean of whole passes | CPU per call: process (thread) | vs PDO baseline (p50) |")
L.append("|---|---|---|---|---|---|---|")
pb = R["php_baseline"] or {}
L.append(f"| PHP + PDO baseline (hash, SELECT, expiry, UPDATE) | {pb.get('keys', '–')} | {ns(pb.get('p50_ns'))} | {ns(pb.get('p99_ns'))} | {ns(pb.get('mean_ns'))} | – | 1× |")
m = ext.get("miss", {})
L.append(f"| PHP `heratio_keys_validate_api_key`, first sight (cache miss, 1 query) | {ext.get('keys', '–')} | {ns(m.get('p50_ns'))} | {ns(m.get('p99_ns'))} | {ns(m.get('mean_ns'))} | – | {fx(ratio(base, m.get('p50_ns')))} |")
L.append(f"| PHP `heratio_keys_validate_api_key`, cached | {ext.get('keys', '–')} | {ns(ext_p50)} | {ns(ext.get('p99_ns'))} | {ns(ext_pass)} | {ns(ext.get('pass_cpu_median_ns'))} | {fx(ratios['baseline_over_php_ext_p50'])} |")
L.append(f"| C `hk_validate`, cached (MariaDB store) | {c10.get('keys', '–')} | {ns(c10.get('p50_ns'))} | {ns(c10.get('p99_ns'))} | {ns(c10.get('pass_mean_median_ns'))} | {ns(c10.get('pass_cpu_median_ns'))} ({ns(c10.get('pass_thread_cpu_median_ns'))}) | {fx(ratios['baseline_over_c_p50'])} |")
L.append(f"| C `hk_validate`, cached (SQLite store) | {c100.get('keys', '–')} | {ns(c100.get('p50_ns'))} | {ns(c100.get('p99_ns'))} | {ns(c100.get('pass_mean_median_ns'))} | {ns(c100.get('pass_cpu_median_ns'))} ({ns(c100.get('pass_thread_cpu_median_ns'))}) | {fx(ratio(base, c100.get('p50_ns')))} |")
L.append("")
L.append(f"Per-call timings include the timer: `hrtime()` pair in PHP, `clock_gettime` pair in C (C timer alone: {ns(c10.get('timer_p50_ns'))} p50). "
         "Pass means time whole passes over the keys in random order with no timer inside the loop (PHP: minus an empty loop over the same keys). "
         "CPU per call: process CPU time (PHP `getrusage`, C `CLOCK_PROCESS_CPUTIME_ID`: usage flusher and feed poller threads included) and, for C, the calling thread's alone, per pass, median; unlike wall time it does not grow when other processes take the CPU. "
         "Usage logging is on everywhere except the PDO baseline, which writes `last_used_at` itself.")
L.append("")
L.append("### Over HTTP: nginx + php-fpm (4 workers), wrk -t2 -c16 from loopback, random key per request")
L.append("")
L.append("Median round (by requests/s) of interleaved rounds; every round's requests/s in the last column.")
L.append("")
L.append("| endpoint | requests/s | p50 | p99 | machine time added per request vs no auth | rounds (req/s) |")
L.append("|---|---|---|---|---|---|")
names = {"baseline": "PDO baseline middleware", "ext": "extension (`heratio_keys_authenticate`), usage log on",
         "ext_nolog": "extension, usage log off (diagnostic, separate pool)", "noauth": "no authentication (floor)"}
for ep in ("baseline", "ext", "ext_nolog", "noauth"):
    x = w[ep]
    if x:
        L.append(f"| {names[ep]} | {x['rps']:,.0f} | {ns(x.get('p50_ns'))} | {ns(x.get('p99_ns'))} | {ns(added.get(ep)) if ep in added else '–'} | {', '.join(f'{v:,.0f}' for v in x['rounds_rps'])} |")
L.append("")
hs = R["http_ext_workers"]
if hs and hs.get("validations"):
    L.append(f"Extension workers (usage log on; {hs['workers']} answered, counters since their first request, warm-up included): "
             f"{hs['validations']:,} validations, cache hit ratio {hs['cache_hits'] / max(1, hs['cache_hits'] + hs['cache_misses']):.1%} "
             f"({hs['cache_misses']:,} misses: first sight of a key in a worker, or a refill after the 60 s TTL), "
             f"usage records written {hs['usage_written']:,}, dropped {hs['usage_dropped']:,}.")
    hw = R["http_ext_workers_after_warmup"]
    if hw and hw.get("workers") == hs.get("workers"):
        h, mi = hs["cache_hits"] - hw["cache_hits"], hs["cache_misses"] - hw["cache_misses"]
        L.append(f"During the measured rounds only (after the warm-up): {h + mi:,} validations, hit ratio {h / max(1, h + mi):.1%} "
                 f"({mi:,} misses: with {ext.get('keys', 0):,} keys at random over 4 workers, each worker fills every key on first sight and again after each 60 s TTL).")
    L.append("")
if R["http_sets"] and w["noauth"]:
    L.append(f"By key set (`--http-keys`: wrk presents the first K keys at random; same rounds, floor {w['noauth']['rps']:,.0f} requests/s; "
             "targets: usage log off ≥ 97 % of the floor, on ≥ 92 %):")
    L.append("")
    L.append("| keys | usage log on: req/s | % of floor | added per request | usage log off: req/s | % of floor | added per request |")
    L.append("|---|---|---|---|---|---|---|")
    for row in R["http_sets"]:
        cells = []
        for ep in ("ext", "ext_nolog"):
            x = row.get(ep)
            cells += [f"{x['rps']:,.0f}", f"{x['of_floor']:.1%}", ns(x["added_ns"])] if x else ["–"] * 3
        L.append(f"| {row['keys']:,} | " + " | ".join(cells) + " |")
    L.append("")
cpu_rows = [(label, x) for label, x in
            [("no authentication (floor)", w["noauth"]), ("PDO baseline middleware", w["baseline"])]
            + [(f"extension, {row['keys']:,} keys, usage log {'on' if ep == 'ext' else 'off'}",
                wrk(ep + ("" if i == 0 else f"_k{row['keys']}")))
               for i, row in enumerate(R["http_sets"]) for ep in ("ext", "ext_nolog")]
            if x and x.get("cpu_us_per_request")]
R["http_cpu_us_per_request"] = {label: x["cpu_us_per_request"] for label, x in cpu_rows}
if cpu_rows:
    floor_cpu = (w["noauth"] or {}).get("cpu_us_per_request") or {}
    L.append("Where the machine's CPU goes, per request (median round of each; CPU time of the processes during the round "
             "÷ its requests; in parentheses, more than the floor's):")
    L.append("")
    L.append("| endpoint | req/s | PHP-FPM workers (all pools, threads included) | MariaDB | nginx | rest: wrk, kernel, other | whole machine |")
    L.append("|---|---|---|---|---|---|---|")
    for label, x in cpu_rows:
        c = x["cpu_us_per_request"]
        cell = lambda k: (f"{c[k]:.1f} µs" + (f" ({c[k] - floor_cpu[k]:+.1f})" if k in floor_cpu and x is not w["noauth"] else "")) if k in c else "–"
        L.append(f"| {label} | {x['rps']:,.0f} | {cell('fpm')} | {cell('mariadb')} | {cell('nginx')} | {cell('rest')} | {cell('machine')} |")
    L.append("")
hot = [(mode, R["php_hot"][mode]) for mode in ("shared", "private") if R["php_hot"].get(mode)]
if hot:
    L.append("Hot key in one PHP process: `heratio_keys_authenticate(['read'])` (usage log on) beside PHP's own `hash('sha256')` of the same key, "
             "whole passes of 5 000 calls minus an empty loop, median (target ≤ 2×):")
    L.append("")
    L.append("| cache | authenticate | hash('sha256') | ratio |")
    L.append("|---|---|---|---|")
    for mode, d in hot:
        L.append(f"| {mode} | {ns(d['authenticate_ns'])} | {ns(d['hash_sha256_ns'])} | {d['ratio']:.2f}× |")
    L.append("")
L.append(f"Ratios: requests/s extension ÷ baseline {fx(ratios['http_rps_ext_over_baseline'])}; "
         f"p50 latency baseline ÷ extension {fx(ratios['http_p50_baseline_over_ext'])}; "
         f"p99 {fx(ratios['http_p99_baseline_over_ext'])}.")
L.append("")
L.append("### Correctness under speed")
L.append("")
L.append("| measurement | SQLite | MariaDB |")
L.append("|---|---|---|")
rs, rm = R["revocation_sqlite"] or {}, R["revocation_mysql"] or {}
if rs or rm:
    f = lambda r: f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms ({r['revocations']} revocations, {r['not_seen_within_15s']} missed)" if r else "–"
    L.append(f"| revocation in another process → refused here (poll {rs.get('poll_interval_ms', rm.get('poll_interval_ms'))} ms) | {f(rs)} | {f(rm)} |")
qsq, qmy = R["queries_sqlite"] or {}, R["queries_mysql"] or {}
if qsq or qmy:
    g = lambda q: f"{q['malformed_store_queries']} lookups per {q['malformed']:,}" + (f"; Com_select +{q['malformed_com_select']}" if q.get("malformed_com_select") is not None else "") if q else "–"
    L.append(f"| store queries for malformed keys | {g(qsq)} | {g(qmy)} |")
    h = lambda q: f"{q['unknown_store_queries']:,} lookups for {q['unknown']:,} validations of {q['unknown_distinct']:,} distinct keys" + (f"; Com_select +{q['unknown_com_select']:,} (feed polls in that time: {q['unknown_feed_polls']})" if q.get("unknown_com_select") is not None else "") if q else "–"
    L.append(f"| store queries for unknown well-formed keys | {h(qsq)} | {h(qmy)} |")
    L.append(f"| cost of rejecting a malformed key (usage log on, queue overflowing) | {ns(qsq.get('malformed_ns_each'))} | {ns(qmy.get('malformed_ns_each'))} |")
for u in R["usage_rate"]:
    last = u["steps"][-1] if u["steps"] else {}
    nxt = ("highest step tried" if last.get("keeps_up") else
           f"next step: {last.get('achieved_per_s', 0):,.0f}/s, dropped {last.get('dropped', 0):,}, backlog {last.get('backlog_at_end', 0):,}")
    L.append(f"| usage log: highest paced rate with nothing dropped, {u['distinct_keys']:,} distinct keys ({u['seconds_per_step']:.0f} s steps, ×1.4 each) | – | {u['max_rate_no_drop_per_s']:,.0f} validations/s ({nxt}) |")
uc = R["usage_cost"]
if uc:
    cpu = lambda v: f"{v:.1f} µs" if v is not None else "–"
    L.append(f"| usage log: what one recorded validation costs the store ({uc['rows']:,} rows over {uc['distinct_credentials']} keys, "
             f"{uc['batch_size']:,}-row batches as the host leader writes them) | – | MariaDB CPU {cpu(uc.get('server_cpu_us_per_row'))}, "
             f"writer CPU {cpu(uc.get('writer_cpu_us_per_row'))}, wall {cpu(uc.get('wall_us_per_row'))} per row |")
mem = R["memory"]
if mem:
    L.append(f"| RSS per cached key (RSS delta ÷ entries, {mem['cache_entries']:,} entries) | – | {mem['bytes_per_entry']:.0f} bytes |")
L.append("")
if crit:
    L.append("### criterion (Rust core, medians)")
    L.append("")
    L.append("| benchmark | median |")
    L.append("|---|---|")
    for k in sorted(crit):
        L.append(f"| `{k}` | {ns(crit[k])} |")
    L.append("")
if host_lines:
    L.append("### One keygen client per host")
    L.append("")
    L += host_lines
    L.append("")
L.append("### Targets")
L.append("")
L.append("| target | goal | this run | met |")
L.append("|---|---|---|---|")
for t in targets:
    L.append(f"| {t[0]} | {t[1]} | {t[2]} | {'yes' if t[3] else '**no**'} |")
L.append("")
summary = "\n".join(L)

# ---------------------------------------------------------------- chart
bars = []
if crit.get("validate/cached/100000_keys"):
    bars.append(("Rust core, cached, 100k keys (criterion)", crit["validate/cached/100000_keys"], "#2b8a3e"))
if c100.get("p50_ns"):
    bars.append((f"C hk_validate, cached, {c100['keys']:,} keys", c100["p50_ns"], "#2b8a3e"))
if c10.get("p50_ns"):
    bars.append((f"C hk_validate, cached, {c10['keys']:,} keys", c10["p50_ns"], "#2b8a3e"))
if ext_p50:
    bars.append((f"PHP extension, cached, {ext['keys']:,} keys", ext_p50, "#1971c2"))
if m.get("p50_ns"):
    bars.append(("PHP extension, cache miss (1 MariaDB query)", m["p50_ns"], "#1971c2"))
if added.get("ext") is not None:
    bars.append(("HTTP: extension middleware, added per request", max(added["ext"], 1.0), "#7048e8"))
if added.get("baseline") is not None:
    bars.append(("HTTP: PDO middleware, added per request", max(added["baseline"], 1.0), "#c92a2a"))
if base:
    bars.append(("PHP + PDO baseline (today)", base, "#c92a2a"))
for cid, name in (("floor/sha256_53_bytes", "floor: SHA-256 of a 53-byte key"),
                  ("floor/hashmap_get_100k", "floor: std HashMap get, 100k keys"),
                  ("floor/moka_get_100k", "floor: moka get, 100k keys")):
    if crit.get(cid):
        bars.append((name, crit[cid], "#868e96"))


def tick(v):
    return {1: "10 ns", 2: "100 ns", 3: "1 µs", 4: "10 µs", 5: "100 µs", 6: "1 ms", 7: "10 ms"}[round(math.log10(v))]


def svg(bars):
    W, left, right, top, bh, gap = 900, 330, 90, 60, 22, 8
    H = top + len(bars) * (bh + gap) + 50
    lo, hi = 10.0, 1e7
    span = math.log10(hi) - math.log10(lo)
    x = lambda v: left + (math.log10(max(v, lo)) - math.log10(lo)) / span * (W - left - right)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Cost of one API-key validation (median, log scale)</text>']
    for e in range(1, 8):
        v = 10 ** e
        o.append(f'<line x1="{x(v):.1f}" y1="{top - 6}" x2="{x(v):.1f}" y2="{H - 40}" stroke="#ddd"/>')
        o.append(f'<text x="{x(v):.1f}" y="{H - 24}" text-anchor="middle" fill="#555">{tick(v)}</text>')
    for v, label in ((300, "C target 300 ns"), (1000, "PHP target 1 µs")):
        o.append(f'<line x1="{x(v):.1f}" y1="{top - 10}" x2="{x(v):.1f}" y2="{H - 40}" stroke="#e8590c" stroke-dasharray="4 3"/>')
        o.append(f'<text x="{x(v) + (-4 if v == 300 else 4):.1f}" y="{top - 12}" text-anchor="{"end" if v == 300 else "start"}" fill="#e8590c" font-size="11">{label}</text>')
    for i, (name, v, colour) in enumerate(bars):
        y = top + i * (bh + gap)
        o.append(f'<text x="{left - 8}" y="{y + bh * 0.68:.1f}" text-anchor="end">{name}</text>')
        o.append(f'<rect x="{left}" y="{y}" width="{max(1.0, x(v) - left):.1f}" height="{bh}" fill="{colour}"/>')
        o.append(f'<text x="{x(v) + 6:.1f}" y="{y + bh * 0.68:.1f}">{ns(v)}</text>')
    o.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" fill="#555">generated by benches/harness/report.py from one harness run; HTTP bars: 1/rps minus the no-auth endpoint\'s 1/rps</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(summary + "\n")
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(R, f, indent=1, default=str)
with open(os.path.join(out, "validation-cost.svg"), "w") as f:
    f.write(svg(bars))
if len(sys.argv) > 6:
    doc = sys.argv[6]
    text = open(doc).read()
    b, e = "<!-- results:begin -->", "<!-- results:end -->"
    if b in text and e in text:
        head, rest = text.split(b, 1)
        _, tail = rest.split(e, 1)
        with open(doc, "w") as f:
            f.write(f"{head}{b}\n<!-- generated by benches/harness/report.py; do not edit by hand -->\n\n{summary}\n{e}{tail}")
        print(f"updated {doc}")

print()
print("ratios (PDO baseline ÷ path, per validation):")
print(f"  PHP extension cached: {fx(ratios['baseline_over_php_ext_p50'])} (p50)  {fx(ratios['baseline_over_php_ext_pass_mean'])} (pass mean)")
print(f"  C hk_validate cached: {fx(ratios['baseline_over_c_p50'])}")
print(f"  HTTP requests/s ext ÷ baseline: {fx(ratios['http_rps_ext_over_baseline'])}, p50 latency baseline ÷ ext: {fx(ratios['http_p50_baseline_over_ext'])}")
print("targets:")
for t in targets:
    print(f"  [{'met' if t[3] else 'MISSED'}] {t[0]} {t[1]}: {t[2]}")
if missing:
    print(f"missing results: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1)
