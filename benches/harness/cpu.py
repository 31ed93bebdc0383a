"""CPU time (clock ticks) of the processes serving the HTTP rounds, for the
harness's per-request accounting: `cpu.py FPM_MASTER NGINX_MASTER [MARIADBD]`
prints one JSON object: each FPM pool's workers (threads included) by pool
name, nginx (master and workers), MariaDB, and the whole machine's busy
ticks from /proc/stat (so what the listed processes did not use — wrk, the
kernel, anything else — is the difference)."""
import json
import sys


def ticks(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def children(pid):
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
    except OSError:
        return ""


out = {}
fpm, nginx = int(sys.argv[1]), int(sys.argv[2])
for child in children(fpm):
    # "php-fpm: pool NAME"
    name = cmdline(child).rpartition("pool ")[2] or "?"
    out[f"fpm:{name}"] = out.get(f"fpm:{name}", 0) + ticks(child)
out["fpm:master"] = ticks(fpm)
out["nginx"] = ticks(nginx) + sum(ticks(c) for c in children(nginx))
if len(sys.argv) > 3 and sys.argv[3]:
    out["mariadb"] = ticks(int(sys.argv[3]))
cpu = open("/proc/stat").readline().split()[1:]
# user nice system idle iowait irq softirq steal: busy = all but idle and iowait
values = [int(v) for v in cpu[:8]]
out["machine_busy"] = sum(values) - values[3] - values[4]
print(json.dumps(out))
