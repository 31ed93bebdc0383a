"""host.py's helpers that hold no state of the run: the C processes, the
connection sampler, wrk's output, Pss and percentiles."""

import json
import os
import queue
import re
import socket
import statistics
import subprocess
import threading


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class CProc:
    """One c_host.c process, driven by line commands; its JSON answers are
    queued by type."""

    def __init__(self, i, cfg, mode, work, region_dir, started):
        n = cfg["n_keys"]
        self.p = subprocess.Popen(
            [cfg["c_host"], cfg["dsn"], cfg["keys_file"], str(cfg["mem_keys"] or n), mode, str(4 * max(n, cfg["mem_keys"]))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(work, f"c{i}.err"), "w"),
            text=True, bufsize=1,
            # The same region directory as the php-fpm pool: without it the C
            # processes made a second region in /dev/shm, with its own leader.
            env=dict(os.environ, HERATIO_KEYS_REGION_DIR=region_dir))
        started.append(self.p)
        self.q = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.pid = self.wait("ready", 60)["pid"]
        self.alive = True

    def _read(self):
        for line in self.p.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.q.setdefault(d["type"], queue.Queue())
            self.q[d["type"]].put(d)

    def cmd(self, line):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except (OSError, ValueError):
            pass

    def wait(self, kind, timeout=30):
        with self.lock:
            q = self.q.setdefault(kind, queue.Queue())
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            return None

    def ask(self, line, kind, timeout=30):
        self.cmd(line)
        return self.wait(kind, timeout)


def total(stats, field):
    return sum((s.get(field) or 0) for s in stats.values())


def host_field(stats, field):
    vals = [s["host"][field] for s in stats.values() if s.get("host")]
    return max(vals) if vals else None


def connections(cfg):
    """heratio-keys' connections to its database, as the server lists them."""
    sql = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
           f"WHERE USER = '{cfg['db_user']}' AND DB = '{cfg['db']}'")
    try:
        out = subprocess.run(cfg["mysql"] + ["-N", "-e", sql], capture_output=True, text=True, timeout=20)
        return int(out.stdout.strip())
    except (ValueError, subprocess.SubprocessError):
        return None


class Sampler(threading.Thread):
    """Samples connections(cfg) every `every` seconds until stop()."""

    def __init__(self, cfg, every):
        super().__init__(daemon=True)
        self.cfg, self.every, self.samples, self.stop_ev = cfg, every, [], threading.Event()
        self.start()

    def run(self):
        while not self.stop_ev.is_set():
            n = connections(self.cfg)
            if n is not None:
                self.samples.append(n)
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join()
        s = self.samples
        return {"samples": len(s), "min": min(s) if s else None, "median": statistics.median(s) if s else None,
                "max": max(s) if s else None, "series": s}


def wrk_result(p):
    out = p.communicate()[0]
    m = re.search(r"(\d+) requests in", out)
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # Sent but never answered (read, write, timeout): such a request may
    # have been validated, and logged, before its worker was killed.
    se = re.search(r"Socket errors: connect \d+, read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(m.group(1)) if m else None, "non_2xx": int(n2.group(1)) if n2 else 0,
            "socket_errors": sum(int(x) for x in se.groups()) if se else 0,
            "rps": float(rps.group(1)) if rps else None, "raw": out[-600:]}


def pss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, int(-(-p / 100 * len(xs) // 1)) - 1))]
