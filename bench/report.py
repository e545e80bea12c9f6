#!/usr/bin/env python3
"""Render bench/run's raw measurements (key<TAB>value lines) as markdown.

usage: report.py RESULTS.tsv SIZE WORKDIR
"""
import os
import sys

res = {}
with open(sys.argv[1]) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        res[k] = v
size = sys.argv[2]
work = sys.argv[3]


def num(k):
    v = res.get(k)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fsec(v):
    return "—" if v is None else f"{v:.1f} s"


def fbytes(v):
    if v is None:
        return "—"
    if v >= 1e9:
        return f"{v / 1e9:.2f} GB"
    if v >= 1e6:
        return f"{v / 1e6:.1f} MB"
    if v >= 1e3:
        return f"{v / 1e3:.1f} kB"
    return f"{v:.0f} B"


def fmib(kib):
    return "—" if kib is None else f"{kib / 1024:.0f} MiB"


def fmbps(v):
    return "—" if v is None else f"{v:.0f} MB/s"


def t(name):
    return num("time." + name)


def m(name):
    return num("rss." + name)


rows = []  # (metric, snapdata, anchor-label, anchor, ratio, bar, status)


def cell(text):
    """Escapes the pipes of a shell command for a markdown table cell."""
    return text.replace("|", "\\|")



def ratio_row(metric, s, a, anchor_label, fmt, bar=None, pct=False):
    r = None
    if s is not None and a not in (None, 0):
        r = s / a
    if r is None:
        rs = "—"
    elif pct:
        rs = f"{r * 100:.2f} %"
    else:
        rs = f"{r:.2f}×"
    status = "—"
    if bar is not None and r is not None:
        status = "pass" if r <= bar else "**MISS**"
    bars = "—" if bar is None else (f"≤ {bar * 100:g} %" if pct else f"≤ {bar:g}×")
    rows.append((metric, fmt(s), f"{cell(anchor_label)}: {fmt(a)}", rs, bars, status))


def rss_row(metric, kib, bar_mib=300):
    status = "—" if kib is None else ("pass" if kib / 1024 <= bar_mib else "**MISS**")
    rows.append((metric, fmib(kib), "database size: " + size, "—", f"≤ {bar_mib} MiB", status))


out = []
out.append(f"# snapdata benchmark, {size}\n")
out.append(f"- command: `{res.get('meta.command', '')}`")
out.append(f"- date: {res.get('meta.date', '')}, commit {res.get('meta.commit', '')}")
out.append(f"- machine: {res.get('meta.cpu', '')}, {res.get('meta.mem', '')} RAM")
out.append(f"- load average at start / end: {res.get('meta.load_start', '')} / {res.get('meta.load_end', '')}")
out.append("- times are wall clock; peak RSS is the largest process of each command (`/usr/bin/time -f %M`);"
           " ratios are snapdata / anchor, lower is better except for throughput\n")

# ---- throughput
if "tp.data_bytes" in res:
    db = num("tp.data_bytes")

    def cli_mbps(name):
        sec = t(name)
        return db / 1e6 / sec if sec else None
    ratio_row("write path MB/s, 1 stream (chunk+HMAC+zstd+AES-GCM+save)", num("tp.e2e_streams_1_mbps"),
              cli_mbps("tp_zstd_c_t1"), "`zstd -3 -T1` CLI", fmbps)
    ratio_row("write path MB/s, 2 parallel streams", num("tp.e2e_streams_2_mbps"),
              cli_mbps("tp_zstd_c_t0"), "`zstd -3 -T0` CLI", fmbps)

# ---- SQLite
if "time.sq_snap_backup" in res:
    ratio_row(f"SQLite backup time ({fbytes(num('sq.db_bytes'))} file)", t("sq_snap_backup"), t("sq_anchor_backup"),
              "`sqlite3 .backup` + `zstd -3 -T0`", fsec)
    ratio_row("SQLite restore time", t("sq_snap_restore"), t("sq_anchor_restore"), "`zstd -d` + copy", fsec)
    ratio_row("SQLite repository bytes", num("sq.snap_stored"), num("sq.anchor_stored"), "`.backup` + `zstd -3`", fbytes)
    rss_row("SQLite backup peak RSS", m("sq_snap_backup"))
    rss_row("SQLite restore peak RSS", m("sq_snap_restore"))

# ---- PostgreSQL
if "time.pg_snap_backup1" in res:
    s1 = t("pg_snap_backup1")
    ratio_row(f"PG backup time ({fbytes(num('pg.db_bytes'))} database)", s1, t("pg_fc"), "`pg_dump -Fc`", fsec, 0.3)
    ratio_row("PG backup time", s1, t("pg_fp_zstd"), "`pg_dump -Fp | zstd -3 -T0`", fsec, 1.1)
    ratio_row("PG backup time", s1, t("pg_fd"), "`pg_dump -Fd -j 2`", fsec)
    ratio_row("PG backup time", s1, t("pg_restic"), "`pg_dump -Fp | restic backup --stdin`", fsec)
    ratio_row("PG repository bytes, first backup", num("pg.snap_repo_bytes"), num("pg.fc_bytes"), "`-Fc` file", fbytes, 1.0)
    ratio_row("PG repository bytes, first backup", num("pg.snap_repo_bytes"), num("pg.fp_zstd_bytes"), "`-Fp | zstd -3`", fbytes)
    ratio_row("PG repository bytes, first backup", num("pg.snap_repo_bytes"), num("pg.restic_bytes"), "restic repo", fbytes)
    ratio_row("PG bytes added, 2nd backup, no change", num("pg.snap2_added"), num("pg.snap1_added"), "first backup",
              fbytes, 0.005, pct=True)
    ratio_row("PG bytes added after churn (a) append-heavy", num("pg.snap3_added"), num("pg.churn_a_zstd"),
              "zstd -3 of changed rows", fbytes, 3.0)
    ratio_row("PG bytes added after churn (a), repository with 256 KiB chunks", num("pg.small3_added"),
              num("pg.churn_a_zstd"), "zstd -3 of changed rows", fbytes, 3.0)
    ratio_row("PG repository bytes, first backup, 256 KiB chunks", num("pg.small1_added"), num("pg.fc_bytes"),
              "`-Fc` file", fbytes, 1.0)
    ratio_row("PG bytes added after churn (b) uniform 1 % updates", num("pg.snap4_added"), num("pg.churn_b_zstd"),
              "zstd -3 of changed rows", fbytes)
    ratio_row("PG backup time, 2nd backup, no change", t("pg_snap_backup2"), s1, "first backup", fsec)
    ratio_row("PG restore time", t("pg_snap_restore"), t("pg_restore_j2"), "`pg_restore -j 2` of `-Fc`", fsec, 0.8)
    ratio_row("PG restore time", t("pg_snap_restore"), t("pg_psql"), "`psql < plain.sql`", fsec)
    ratio_row("diagnostic: server COPY of all tables in key order", t("pg_copy_ordered"), t("pg_copy_plain"),
              "plain `COPY t TO STDOUT`", fsec)
    rss_row("PG backup peak RSS", m("pg_snap_backup1"))
    rss_row("PG restore peak RSS", m("pg_snap_restore"))

# ---- clone (bench/run --only pg,clone)
if "time.clone_snap" in res:
    ratio_row("PG clone from the live source into a new database", t("clone_snap"), t("clone_pgdump"),
              "`pg_dump -Fc` then `pg_restore -j 2`", fsec, 0.5)
    ratio_row("PG clone from the live source into a new database", t("clone_snap"), t("clone_backup_restore"),
              "snapdata backup + restore", fsec, 1.05)
    rss_row("PG clone peak RSS", m("clone_snap"))

# ---- MariaDB
if "time.my_snap_backup" in res:
    s = t("my_snap_backup")
    ratio_row(f"MariaDB backup time ({fbytes(num('my.db_bytes'))} InnoDB)", s, t("my_dump_zstd"),
              "`mariadb-dump --single-transaction | zstd -3 -T0`", fsec, 1.1)
    ratio_row("MariaDB backup time", s, t("my_mydumper"), "`mydumper -t 2`", fsec)
    ratio_row("MariaDB repository bytes", num("my.snap_added"), num("my.dump_zstd_bytes"), "dump | zstd -3", fbytes)
    ratio_row("MariaDB restore time", t("my_snap_restore"), t("my_load"), "`mariadb < dump.sql`", fsec, 0.3)
    ratio_row("MariaDB restore time", t("my_snap_restore"), t("my_myloader"), "`myloader -t 2`", fsec)
    rss_row("MariaDB backup peak RSS", m("my_snap_backup"))
    rss_row("MariaDB restore peak RSS", m("my_snap_restore"))

# ---- copy to S3
if "time.cp_snap_copy" in res:
    ratio_row(f"copy to S3 ({fbytes(num('cp.repo_bytes'))} repository), same chunk parameters", t("cp_snap_copy"),
              t("cp_rclone"), "`rclone copy` of the repository's files", fsec, 1.0)
    ratio_row("copy to S3, same chunk parameters, once both repositories are open", num("cp.copy_seconds"),
              t("cp_rclone"), "`rclone copy` of the repository's files", fsec)
    ratio_row("copy to S3, same chunk parameters", t("cp_snap_copy"), t("cp_restic_copy"),
              "`restic copy` (`--copy-chunker-params`)", fsec)
    ratio_row("copy to S3, own parameters (re-hash, recompress)", t("cp_snap_copy_rehash"), t("cp_rclone"),
              "`rclone copy` of the repository's files", fsec)
    ratio_row("copy to S3 again, nothing new (process wall time)", t("cp_snap_copy_again"), 1.0, "1 s", fsec, 1.0)
    ratio_row("copy to S3 again, nothing new (once both repositories are open)", num("cp.again_seconds"), 1.0, "1 s",
              lambda v: "—" if v is None else f"{v:.2f} s", 1.0)
    rss_row("copy to S3 peak RSS", m("cp_snap_copy"))

out.append("| metric | snapdata | anchor | ratio | bar | status |")
out.append("|---|---|---|---|---|---|")
for r in rows:
    out.append("| " + " | ".join(r) + " |")


# ---- every run of the timings with a bar
def runs_of(name):
    v = res.get("time." + name + ".runs")
    return [float(x) for x in v.split(" / ")] if v else []


spread = []
for metric, s, a, bar in [("PG backup ÷ `pg_dump -Fc`", "pg_snap_backup1", "pg_fc", 0.3),
                          ("PG backup ÷ `pg_dump -Fp | zstd -3 -T0`", "pg_snap_backup1", "pg_fp_zstd", 1.1),
                          ("PG restore ÷ `pg_restore -j 2`", "pg_snap_restore", "pg_restore_j2", 0.8),
                          ("PG clone ÷ `pg_dump -Fc` + `pg_restore -j 2`", "clone_snap", "clone_pgdump", 0.5),
                          ("PG clone ÷ snapdata backup + restore", "clone_snap", "clone_backup_restore", 1.05),
                          ("MariaDB backup ÷ `mariadb-dump | zstd -3 -T0`", "my_snap_backup", "my_dump_zstd", 1.1)]:
    rs, ra = runs_of(s), runs_of(a)
    ms, ma = num("time." + s + ".median"), num("time." + a + ".median")
    if not rs or not ra or not ms or not ma:
        continue
    pairs = " / ".join(f"{x / y:.2f}" for x, y in zip(rs, ra))
    spread.append(f"| {cell(metric)} | {' / '.join(fsec(x) for x in rs)} | {' / '.join(fsec(x) for x in ra)} | "
                  f"{min(rs) / min(ra):.2f}× | {ms / ma:.2f}× | {pairs} | ≤ {bar:g}× |")
if spread:
    out.append("\n## Timings with a bar: every run\n")
    out.append("Each runs several times, alternating with its anchor, and the table above counts the fastest run of "
               "each side. Here every run, in order, the ratio of the medians, and the ratio of each run to the "
               "anchor's run next to it.\n")
    out.append("| ratio | snapdata runs | anchor runs | fastest ÷ fastest | median ÷ median | run by run | bar |")
    out.append("|---|---|---|---|---|---|---|")
    out.extend(spread)

# ---- anchors' own resources
anch = [(k[5:], num(k), num("rss." + k[5:])) for k in res if k.startswith("time.") and not k.endswith((".runs", ".median"))]
if anch:
    ncpu = num("tp.cpus") or os.cpu_count() or 1
    out.append("\n## Every command: wall time, CPU and peak RSS\n")
    out.append("Commands measured more than once (`NAME`, `NAME_2`, ...) count with their fastest run; `NAME` shows "
               "that one. "
               "CPU is the command's own user+system time (its child processes included); machine busy is the CPU "
               f"time all {ncpu:g} cores spent busy during the command (`/proc/stat`: the command, the database "
               "servers and anything else), against wall × cores.\n")
    out.append("| command | wall | CPU (user+sys) | machine busy / available | peak RSS | runs |")
    out.append("|---|---|---|---|---|---|")
    for name, sec, kib in anch:
        runs = res.get("time." + name + ".runs", "")
        runs = " / ".join(fsec(float(x)) for x in runs.split(" / ")) if runs else ""
        cpu, busy = num("cpu." + name), num("busy." + name)
        cpu_s = f"{cpu:.1f} s" if cpu is not None else ""
        busy_s = f"{busy:.1f} / {sec * ncpu:.1f} s" if busy is not None and sec is not None else ""
        out.append(f"| {name} | {fsec(sec)} | {cpu_s} | {busy_s} | {fmib(kib)} | {runs} |")

# ---- sizes and stages
extra = [(k, v) for k, v in res.items() if k.startswith(("tp.", "pg.", "my.", "sq.", "cp."))]
if extra:
    out.append("\n## Raw figures (bytes, MB/s)\n")
    out.append("| key | value |")
    out.append("|---|---|")
    for k, v in extra:
        out.append(f"| {k} | {v} |")

for name, title in [("throughput.top", "CPU profile: throughput program (end-to-end part)"),
                    ("pg_backup.top", "CPU profile: snapdata backup of PostgreSQL"),
                    ("pg_restore.top", "CPU profile: snapdata restore into PostgreSQL")]:
    p = os.path.join(work, name)
    if os.path.exists(p):
        with open(p) as f:
            lines = f.read().splitlines()
        out.append(f"\n## {title}\n")
        out.append("```")
        out.extend(lines[:40])
        out.append("```")

for name, title in [("pg_snap_backup1.statements", "PostgreSQL statements >= 200 ms during snapdata backup"),
                    ("pg_snap_restore.statements", "PostgreSQL statements >= 200 ms during snapdata restore"),
                    ("pg_restore_j2.statements", "PostgreSQL statements >= 200 ms during pg_restore -j 2")]:
    p = os.path.join(work, name)
    if os.path.exists(p):
        with open(p) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        out.append(f"\n## {title}\n")
        out.append("```")
        for ln in lines[:60]:
            out.append(ln[:200])
        out.append("```")

print("\n".join(out))
