#!/usr/bin/env python3
"""One keygen client per host, measured: a whole host of validating
processes — php-fpm (WORKERS workers, static pool) behind nginx, plus C_PROCS
C processes (c_host.c) — against one MariaDB database, in one mode:

    host.py private|shared CONFIG.json OUT.json

private: every process its own cache, feed poller, usage writer and pool
(heratio_keys.shared_cache = Off; hk_validator_open_ex flags 0).
shared:  one host region for all of them (shared_cache On; the C processes
open with HK_OPEN_SHARED_CACHE); the region directory starts empty (cold).

Phases (run.sh runs both modes one after the other, on the same keys):
  warm-up  wrk presents the keys in order, each C process validates them all;
  idle     no traffic for longer than the connection idle time, then the
           heratio-keys connections (information_schema.processlist) are
           sampled and every process's feed polls counted;
  load     two rounds of wrk with a random key per request plus paced C
           traffic; connections sampled, hits/misses/store queries counted
           from every process's stats; round 1 lies within one cache TTL of
           the warm-up, round 2 reaches past it (the TTL refills);
  revoke   keys revoked with `keygen api:revoke` while every worker (one
           /watch/ request each) and every C process validates them every
           few ms: the time until each process refuses;
  memory   (if MEM_KEYS) Pss of the host's processes before and after
           caching MEM_KEYS keys;
  kill     the leader (shared; a worker in private mode) killed with SIGKILL
           during a revocation and during load: takeover time, revocations
           missed, usage rows lost (under load, every C process but one
           validates; the one left idle is asked who leads).
Every figure comes from the processes' own counters (heratio_keys_stats(),
hk_validator_stats / hk_validator_host_stats), the server's processlist,
/proc/PID/smaps_rollup and wrk; the load average is recorded at each phase.
Prints progress to stderr; writes one JSON object to OUT.json.
"""

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from hostlib import CProc as _CProc, Sampler as _Sampler, free_port, host_field, pct, pss_kb, total, wrk_result

mode, cfg_path, out_path = sys.argv[1:4]
cfg = json.load(open(cfg_path))
W, C, N = cfg["workers"], cfg["c_procs"], cfg["n_keys"]
here = os.path.dirname(os.path.abspath(__file__))
work = os.path.join(cfg["work"], mode)
os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
started = []  # Popen objects to stop at exit
res = {"mode": mode, "workers": W, "c_procs": C, "keys": N, "loads": [], "checks": []}


def log(msg):
    print(f"    [{mode}] {msg}", file=sys.stderr, flush=True)


def loadavg(label):
    with open("/proc/loadavg") as f:
        res["loads"].append([label] + f.read().split()[:3])


def check(name, ok, detail=""):
    res["checks"].append({"name": f"{mode}: {name}", "ok": bool(ok), "detail": str(detail)[:400]})
    log(("ok   " if ok else "FAIL ") + name + ("" if ok else f" ({detail})"))


# --- php-fpm and nginx ---------------------------------------------------------
fport, nport = free_port(), free_port()
# The host region lives in memory, as in production (/dev/shm), in a private
# directory of this run, removed at the end.
region_dir = cfg["region_dir"] + "-" + mode
os.makedirs(region_dir, mode=0o700, exist_ok=True)
shared_ini = "On" if mode == "shared" else "Off"
with open(os.path.join(work, "php-fpm.conf"), "w") as f:
    f.write(f"""[global]
pid = {work}/fpm.pid
error_log = {work}/fpm.log
daemonize = no
process_control_timeout = 10s
[host]
listen = 127.0.0.1:{fport}
listen.backlog = 1024
pm = static
pm.max_children = {W}
pm.max_requests = 0
clear_env = yes
env[HERATIO_KEYS_REGION_DIR] = "{region_dir}"
php_admin_value[heratio_keys.dsn] = "{cfg['dsn']}"
php_admin_value[heratio_keys.shared_cache] = {shared_ini}
php_admin_value[log_errors] = On
""")
root_user = os.geteuid() == 0
with open(os.path.join(work, "nginx.conf"), "w") as f:
    f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
{'user root;' if root_user else ''}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp/body;
    fastcgi_temp_path {work}/tmp/fastcgi;
    proxy_temp_path {work}/tmp/proxy;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    server {{
        listen 127.0.0.1:{nport} backlog=1024;
        location ~ ^/(host|watch|stats)/ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {here}/www/$1.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:{fport};
        }}
    }}
}}
""")


def spawn(argv, logname, **kw):
    p = subprocess.Popen(argv, stdout=kw.pop("stdout", open(os.path.join(work, logname), "w")),
                         stderr=subprocess.STDOUT if "stderr" not in kw else kw.pop("stderr"), **kw)
    started.append(p)
    return p


fpm = spawn([cfg["fpm_bin"], "-d", f"extension={cfg['ext']}", "-y", os.path.join(work, "php-fpm.conf"), "-F"]
            + (["-R"] if root_user else []), "fpm.out")
nginx = spawn(["nginx", "-p", work + "/", "-c", os.path.join(work, "nginx.conf"),
               "-e", os.path.join(work, "nginx-error.log")], "nginx.out")


def workers():
    """Live php-fpm worker pids (children of the master)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == fpm.pid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)


def get(path, key=None, timeout=30):
    try:
        c = http.client.HTTPConnection("127.0.0.1", nport, timeout=timeout)
        c.request("GET", path, headers={"X-API-Key": key} if key else {})
        r = c.getresponse()
        body = r.read()
        c.close()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException):
        return 0, None


def http_many(reqs, timeout=30):
    with ThreadPoolExecutor(max_workers=min(256, max(1, len(reqs)))) as ex:
        return list(ex.map(lambda r: get(r[0], r[1], timeout), reqs))


def reach_all(key, path="/host/reach"):
    """Every worker validates `key` (bursts holding workers 100 ms)."""
    seen = set()
    want = set(workers())
    for _ in range(30):
        for status, body in http_many([(f"{path}?hold=100", key)] * (2 * W)):
            if body and "pid" in body:
                seen.add(body["pid"])
        want = set(workers())
        if want <= seen:
            break
    return want <= seen, seen & want


def worker_stats():
    """heratio_keys_stats() of every live worker: pid -> stats."""
    got = {}
    for _ in range(20):
        want = set(workers())
        for status, body in http_many([("/stats/x", None)] * (3 * W)):
            if body and "pid" in body:
                got[body["pid"]] = body["stats"]
        if want <= set(got):
            return {p: got[p] for p in want}
    return {p: got[p] for p in set(got) & set(workers())}


def all_stats(cprocs):
    """Counters of every process of the host: pid -> normalised stats."""
    out = {}
    for pid, s in worker_stats().items():
        out[pid] = {"kind": "php", **{k: s.get(k) for k in ("validations", "cache_hits", "cache_misses", "store_queries",
                                                              "feed_polls", "usage_dropped", "shared", "shared_error")},
                    "host": ({k[5:]: s[k] for k in s if k.startswith("host_")} if s.get("shared") else None)}
    for c in cprocs:
        if c.alive:
            s = c.ask("stats", "stats")
            if s:
                out[c.pid] = {"kind": "c", **{k: s.get(k) for k in ("validations", "cache_hits", "cache_misses",
                                                                    "store_queries", "feed_polls", "usage_dropped")},
                              "shared": s.get("host") is not None, "shared_error": s.get("not_shared"),
                              "host": s.get("host")}
    return out


def wrk(path, seconds, conns, seq=False, keys=None):
    env = dict(os.environ, HK_KEYS_FILE=keys or cfg["load_keys_file"])
    if seq:
        env["HK_WRK_ORDER"] = "seq"
    return subprocess.Popen(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "-s", os.path.join(here, "wrk_keys.lua"),
                             f"http://127.0.0.1:{nport}{path}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def start_cproc(i):
    return _CProc(i, cfg, mode, work, region_dir, started)


def sample_connections(every):
    return _Sampler(cfg, every)


def keygen(*args):
    out = subprocess.run([cfg["keygen"], "--dsn", cfg["dsn"], "--json", *args], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"keygen {args}: {out.stderr}")
    return json.loads(out.stdout)


def sql_count(sql):
    out = subprocess.run(cfg["mysql"] + ["-N", "-e", sql, cfg["db"]], capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip() or 0)


def leader_pid(cprocs):
    for c in cprocs:
        if c.alive:
            h = c.ask("host", "host", 5)
            if h and h.get("leader_pid"):
                return h["leader_pid"]
    return None


def revoke_round(cprocs, label, kill=None):
    """A fresh key, watched by every worker and C process, revoked with
    keygen; `kill` (a pid) is killed with SIGKILL just before. Returns the
    per-process latencies (ms), the processes that never refused, the
    takeover time (ms) when a leader was killed."""
    k = keygen("api:generate", str(cfg["client_id"]), "--name", label, "--scopes", "read")
    time.sleep(1.2)  # its "generated" feed row is read everywhere first
    live = [c for c in cprocs if c.alive]
    box = {}
    t = threading.Thread(target=lambda: box.update(r=http_many([("/watch/x?timeout=6000", k["key"])] * W, 20)))
    t.start()
    for c in live:
        c.ask(f"watch {k['key']} 6000", "watching", 10)
    time.sleep(0.8)  # every watcher has validated the key once (cached)
    takeover = None
    if kill:
        killed_at = time.time()
        os.kill(kill, signal.SIGKILL)
        for c in live:
            if c.pid == kill:
                c.alive = False
    t0 = time.time()
    keygen("api:revoke", str(k["id"]))
    if kill and mode == "shared":
        while time.time() - killed_at < 10:
            lp = leader_pid(cprocs)
            if lp and lp != kill:
                takeover = (time.time() - killed_at) * 1000
                break
            time.sleep(0.005)
    t.join()
    lat, missed, pids = [], 0, set()
    for status, body in box.get("r", []):
        if not body or "pid" not in body or body.get("first") != "valid":
            continue
        pids.add(body["pid"])
        if body["status"] == "revoked":
            lat.append((body["refused_at"] - t0) * 1000)
        else:
            missed += 1
    for c in live:
        if not c.alive:
            continue
        w = c.wait("watch", 10)
        if w and w["status"] == "revoked":
            lat.append((w["refused_at"] - t0) * 1000)
        else:
            missed += 1
    return lat, missed, len(pids), takeover


cprocs = []
try:
    # --- start ------------------------------------------------------------------
    loadavg("start")
    up = False
    for _ in range(150):
        if get("/host/ready")[0] == 401:
            up = True
            break
        time.sleep(0.1)
    check("php-fpm and nginx up", up)
    if not up:
        raise SystemExit
    keys = [k.strip() for k in open(cfg["load_keys_file"]) if len(k.strip()) == 53]
    ok, seen = reach_all(keys[0])
    check(f"every one of {W} workers validates", ok, len(seen))
    # The workers open first: in shared mode one of them leads.
    cprocs = [start_cproc(i) for i in range(C)]
    first = all_stats(cprocs)
    res["shared_processes"] = sum(1 for s in first.values() if s.get("shared"))
    res["shared_errors"] = sorted({s.get("shared_error") for s in first.values() if s.get("shared_error")})
    if mode == "shared":
        check("every process shares the host region", res["shared_processes"] == W + C, res["shared_errors"])
        leaders = [p for p, s in first.items() if s.get("host") and s["host"].get("leader")]
        check("exactly one process leads", len(leaders) == 1, leaders)
        seen_leaders = {s["host"].get("leader_pid") for s in first.values() if s.get("host")}
        check("every process sees the same leader (one region)", len(seen_leaders) == 1, seen_leaders)
    else:
        check("no process shares a region", res["shared_processes"] == 0)

    # --- warm-up ------------------------------------------------------------------
    loadavg("warm-up")
    cold = total(first, "store_queries")
    t_warm = time.time()
    p = wrk("/host/warm/x", cfg["warm_s"], cfg["wrk_conns"], seq=True)
    for c in cprocs:
        c.cmd(f"fill 0 {N}")
    fills = [c.wait("fill", 600) for c in cprocs]
    res["warm"] = {"wrk": wrk_result(p), "c_fill_s": [f and f["s"] for f in fills]}
    check("C processes: every key valid at warm-up", all(f and f["valid"] == N for f in fills), fills)

    # --- idle -----------------------------------------------------------------------
    loadavg("idle")
    time.sleep(cfg["idle_settle_s"])
    s0, t0 = all_stats(cprocs), time.time()
    sampler = sample_connections(1.0)
    time.sleep(cfg["idle_window_s"])
    idle_conn = sampler.stop()
    s1, t1 = all_stats(cprocs), time.time()
    res["idle"] = {"connections": idle_conn, "seconds": t1 - t0,
                   "feed_polls_per_s": (total(s1, "feed_polls") - total(s0, "feed_polls")) / (t1 - t0),
                   "feed_polls_per_s_per_process": {p: (s1[p]["feed_polls"] - s0[p]["feed_polls"]) / (t1 - t0)
                                                    for p in s1 if p in s0 and s1[p]["feed_polls"] != s0[p]["feed_polls"]}}
    log(f"idle: connections {idle_conn['median']} (max {idle_conn['max']}), "
        f"feed polls {res['idle']['feed_polls_per_s']:.1f}/s")

    # --- load -----------------------------------------------------------------------
    rounds = []
    before, tb = s1, t1
    t_load = time.time()
    for r in (1, 2):
        loadavg(f"load round {r}")
        sampler = sample_connections(0.5)
        p = wrk(f"/host/load{r}/x", cfg["round_s"], cfg["wrk_conns"])
        for c in cprocs:
            c.cmd(f"load {cfg['c_rate']} /c/load{r} {N}")
        w = wrk_result(p)
        idles = [c.ask("idle", "idle") for c in cprocs]
        conn = sampler.stop()
        after, ta = all_stats(cprocs), time.time()
        d = {f: total(after, f) - total(before, f) for f in ("validations", "cache_hits", "cache_misses",
                                                              "store_queries", "feed_polls", "usage_dropped")}
        rounds.append({"round": r, "wrk": w, "c": idles, "connections": conn, "seconds": ta - tb,
                       "delta": d, "hit_ratio": d["cache_hits"] / max(1, d["cache_hits"] + d["cache_misses"]),
                       "feed_polls_per_s": d["feed_polls"] / (ta - tb), "since_warm_up_s": tb - t_warm})
        log(f"round {r}: {w['rps']} req/s, hit ratio {rounds[-1]['hit_ratio']:.4f}, store queries "
            f"{d['store_queries']}, connections median {conn['median']} max {conn['max']}")
        check(f"round {r}: every answer 200", w["requests"] and w["non_2xx"] == 0 and
              all(i and i["not_valid"] == 0 for i in idles), w["raw"][-200:])
        before, tb = after, ta
    res["rounds"] = rounds
    window = time.time() - t_load
    q = sum(r["delta"]["store_queries"] for r in rounds)
    res["queries"] = {"store_queries": q, "window_s": window, "distinct_keys": N, "ttl_s": 60,
                      "per_key": q / N, "per_key_per_ttl": q / N * 60 / window,
                      "from_cold_through_load": total(before, "store_queries") - cold}

    # --- revocations at every process ---------------------------------------------------
    loadavg("revocations")
    lat, missed, seen_workers = [], 0, []
    for i in range(cfg["revocations"]):
        l, m, n_w, _ = revoke_round(cprocs, f"rv{i}")
        lat += l
        missed += m
        seen_workers.append(n_w)
    res["revocation"] = {"rounds": cfg["revocations"], "processes": W + C, "observations": len(lat),
                         "missed": missed, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": pct(lat, 100),
                         "workers_watching": seen_workers}
    check("revocation: every process refused every revoked key (none missed)", missed == 0 and
          all(n == W for n in seen_workers), (missed, seen_workers))
    log(f"revocation: p50 {res['revocation']['p50_ms']} p99 {res['revocation']['p99_ms']} ms, missed {missed}")

    # --- memory -------------------------------------------------------------------------
    # Private: what one process's cache costs (Pss growth of one C process
    # caching MEM_KEYS keys, per entry added). Shared: what the host's cache
    # costs: the region's memory (tmpfs pages allocated), and the growth of
    # every process's Pss while the keys were cached (the region's pages are
    # shared: Pss counts each once across the host).
    if cfg["mem_keys"]:
        loadavg("memory")
        M = cfg["mem_keys"]
        host_pids = workers() + [c.pid for c in cprocs if c.alive]
        before_kb = {p: pss_kb(p) for p in host_pids}
        if mode == "private":
            c = cprocs[0]
            e0 = c.ask("stats", "stats")["cache_entries"]
            fill = c.ask(f"fill 0 {M}", "fill", 1800)
            e1 = c.ask("stats", "stats")["cache_entries"]
            one = (pss_kb(c.pid) - before_kb[c.pid]) * 1024
            per = one / max(1, e1 - e0)
            res["memory"] = {"keys": M, "entries_before": e0, "entries": e1, "pss_delta_bytes": one,
                             "bytes_per_entry": per, "one_process_bytes_for_keys": per * M,
                             "host_pss_bytes": sum(pss_kb(p) for p in host_pids) * 1024,
                             "fill_valid": fill and fill["valid"]}
        else:
            region = next(os.path.join(region_dir, f) for f in os.listdir(region_dir) if f.endswith(".region"))
            alloc = lambda: os.stat(region).st_blocks * 512
            r0 = alloc()
            e0 = cprocs[0].ask("stats", "stats")["host"]["entries"]
            share = -(-M // len(cprocs))
            for i, c in enumerate(cprocs):
                c.cmd(f"fill {i * share} {min(M, (i + 1) * share)}")
            fills = [c.wait("fill", 1800) for c in cprocs]
            after_kb = {p: pss_kb(p) for p in host_pids}
            e1 = cprocs[0].ask("stats", "stats")["host"]["entries"]
            res["memory"] = {"keys": M, "entries_before": e0, "entries": e1, "region_allocated_before": r0,
                             "region_allocated_bytes": alloc(), "region_file_bytes": os.path.getsize(region),
                             "host_pss_delta_bytes": (sum(after_kb.values()) - sum(before_kb.values())) * 1024,
                             "host_pss_bytes": sum(after_kb.values()) * 1024, "processes": len(host_pids),
                             "fill_valid": sum(f["valid"] for f in fills if f)}
        log(f"memory: {res['memory']}")

    # --- kill: revocations with the leader (or a worker) killed ----------------------------
    loadavg("kill: revocations")
    kills = []
    for i in range(cfg["kill_rounds"]):
        victim = leader_pid(cprocs) if mode == "shared" else random.choice(workers())
        l, m, n_w, took = revoke_round(cprocs, f"kill{i}", kill=victim)
        kills.append({"killed": victim, "killed_kind": "c" if any(c.pid == victim for c in cprocs) else "php",
                      "takeover_ms": took, "latencies": l, "missed": m, "p99_ms": pct(l, 99),
                      "max_ms": pct(l, 100)})
        for _ in range(100):  # php-fpm replaces a killed worker
            if len(workers()) == W:
                break
            time.sleep(0.1)
        reach_all(keys[0])
        log(f"kill round {i}: killed {victim}, takeover {took} ms, p99 {pct(l, 99)} ms, missed {m}")
    res["kill_revocations"] = kills
    check("kill: no revocation missed by a surviving process", all(k["missed"] == 0 for k in kills),
          [k["missed"] for k in kills])
    if mode == "shared":
        check("kill: another process took the lead", all(k["takeover_ms"] is not None for k in kills))

    # --- kill under load: usage rows ----------------------------------------------------
    loadavg("kill: usage")
    live = [c for c in cprocs if c.alive]
    dropped_before = host_field(all_stats(cprocs), "dropped") or 0
    # Both modes write to the same database: the path names the mode.
    victim = leader_pid(cprocs) if mode == "shared" else random.choice(workers())
    # Asked who leads after the kill: a C process left without load. A
    # loading one answers only between its validations, and under load the
    # ring is full (validations wait for room, which only a leader frees):
    # its answer would time the wait, not the takeover.
    probe = next((c for c in live if c.pid != victim), None)
    p = wrk(f"/host/kill/{mode}/x", cfg["kill_load_s"], cfg["wrk_conns"])
    for c in live:
        if c is not probe:
            c.cmd(f"load {cfg['c_rate']} /c/kill/{c.pid} {N}")
    time.sleep(cfg["kill_load_s"] / 3)
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    took = None
    for c in live:
        if c.pid == victim:
            c.alive = False
    if mode == "shared":
        while time.time() - killed_at < 10:
            lp = leader_pid([probe] if probe else cprocs)
            if lp and lp != victim:
                took = (time.time() - killed_at) * 1000
                break
            time.sleep(0.005)
    w = wrk_result(p)
    idles = {c.pid: c.ask("idle", "idle") for c in live if c.alive and c is not probe}
    time.sleep(4)  # usage_flush_interval (1 s) + a poll, twice over
    drained = None
    if mode == "shared":
        # The new leader may still be writing a backlog: wait for the queue.
        for _ in range(60):
            drained = all_stats(cprocs)
            if not host_field(drained, "queued"):
                break
            time.sleep(0.5)
    dropped = (host_field(drained, "dropped") or 0) - dropped_before if drained else None
    rows_http = sql_count(f"SELECT COUNT(*) FROM usage_log WHERE endpoint LIKE '/host/kill/{mode}/%'")
    c_rows = {p: sql_count(f"SELECT COUNT(*) FROM usage_log WHERE endpoint = '/c/kill/{p}'") for p in idles}
    answered = (w["requests"] or 0) - w["non_2xx"]
    c_lost = sum((i["validations"] if i else 0) - c_rows[p] for p, i in idles.items())
    res["kill_usage"] = {"killed": victim, "killed_kind": "c" if any(c.pid == victim for c in cprocs) else "php",
                         "takeover_ms": took, "wrk": w, "http_answered": answered, "http_rows": rows_http,
                         "http_lost": answered - rows_http, "c_validations": {p: i and i["validations"] for p, i in idles.items()},
                         "c_rows": c_rows, "c_lost": c_lost, "host_dropped": dropped}
    log(f"kill under load: killed {victim}, answered {answered}, rows {rows_http}, C lost {c_lost}, takeover {took} ms")
    if mode == "shared":
        # Exact accounting: a row missing for an answered request is one the
        # host queue counted as dropped (full while no leader drained it, or
        # a slot the killed process claimed and never filled). The killed
        # process's own validations are not counted as answered, so its
        # drops make `dropped` exceed what is missing, never the reverse.
        # Rows may also exceed the answers: wrk stops with up to one request
        # per connection in flight, validated (and logged) but not counted.
        lost = max(0, answered - rows_http) + c_lost
        unanswered = w["non_2xx"] + w.get("socket_errors", 0) + cfg["wrk_conns"]
        check("kill under load: every answered request has its usage row or is counted as dropped (HTTP and C)",
              rows_http - answered <= unanswered and c_lost >= 0
              and dropped is not None and lost <= dropped,
              {k: v for k, v in res["kill_usage"].items() if k != "wrk"} | {"non_2xx": w["non_2xx"],
                                                                        "socket_errors": w.get("socket_errors")})
    last = all_stats(cprocs)
    res["host_dropped"] = host_field(last, "dropped")
    res["usage_dropped"] = total(last, "usage_dropped")
    loadavg("end")
finally:
    for c in cprocs:
        if c.alive:
            c.ask("quit", "bye", 20)
    fpm.send_signal(signal.SIGQUIT)
    try:
        fpm.wait(30)
    except subprocess.TimeoutExpired:
        pass
    for p in started:
        if p.poll() is None:
            p.terminate()
    time.sleep(0.3)
    for p in started:
        if p.poll() is None:
            p.kill()
    for f in os.listdir(region_dir):
        os.unlink(os.path.join(region_dir, f))
    os.rmdir(region_dir)
    json.dump(res, open(out_path, "w"), indent=1)
