"""``python -m bench.run``: run the scenarios against the bot and the floor, print the figures.

Usually started through ``bench/run``, which sets up the virtual environment and a throwaway
Redis (BENCH_REDIS_URL). Without BENCH_REDIS_URL this module starts its own redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from bench import procstat, report
from bench.harness import Environment, run_once, subject_base_env
from bench.redisproxy import RedisProxy
from bench.scenarios import Scenario, scenarios

NAMES = ("overhead", "streaming", "burst", "groups", "limits")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark the bot against fake Telegram and LLM servers."
    )
    parser.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        choices=NAMES,
        metavar="NAME",
        help=f"scenarios to run (default: all of {', '.join(NAMES)})",
    )
    parser.add_argument("--runs", type=int, help="runs per scenario; medians are reported (3)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke check: 1 run, smaller user counts"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every run's figures")
    parser.add_argument("--no-floor", action="store_true", help="skip the reference floor")
    parser.add_argument(
        "--no-redis-proxy",
        action="store_true",
        help="bot talks to Redis directly (no round-trip counts; commands still counted)",
    )
    parser.add_argument(
        "--limit-drafts",
        action="store_true",
        help="in `limits`, count sendMessageDraft against the flood limits too",
    )
    parser.add_argument(
        "--group-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds a group member waits for any reply before giving up (5)",
    )
    parser.add_argument(
        "--bot-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the bot, e.g. --bot-env LOG_LEVEL=WARNING (repeatable)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record a py-spy profile (raw format) of the bot per run into DIR",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the subject and the bench to CPUs"
    )
    return parser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _own_redis() -> Iterator[str]:
    """A throwaway redis-server of our own, gone afterwards (used without BENCH_REDIS_URL)."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: no redis-server; run bench/run (it installs one) or set BENCH_REDIS_URL")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(100):
                with contextlib.suppress(redis.ConnectionError):
                    client.ping()
                    break
                time.sleep(0.05)
            yield url
        finally:
            client.close()
            process.terminate()
            process.wait()


def _redis_pid(url: str) -> int | None:
    """The server's pid when it runs on this machine (for its CPU figure)."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    client = redis.Redis.from_url(url)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}").exists() else None


def _cpus(no_pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """The subject gets one core, everything of the bench's (fakes, proxy, Redis) the rest."""
    available = sorted(os.sched_getaffinity(0))
    if no_pin or len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def _machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "python_telegram_bot": version("python-telegram-bot"),
        "commit": commit,
    }


def _raise_fd_limit() -> None:
    # A burst of 1,000 users means thousands of sockets in this one process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _scenario(
    scenario: Scenario, runs: int, env: Environment, with_floor: bool
) -> dict[str, Any]:
    per_kind: dict[str, list[dict[str, Any]]] = {"bot": [], "floor": []}
    kinds = ("floor", "bot") if with_floor else ("bot",)
    error = None
    for index in range(1, runs + 1):
        for kind in kinds:
            started = time.monotonic()
            print(f"bench: {scenario.name} run {index}/{runs}: {kind} ...", end="", file=sys.stderr)
            sys.stderr.flush()
            try:
                figures = await run_once(scenario, kind, env, index)
            except RuntimeError as exc:
                print(" failed", file=sys.stderr)
                error = f"{kind}: {exc}"
                print(f"bench: {error}", file=sys.stderr)
                continue
            per_kind[kind].append(figures)
            print(
                f" {time.monotonic() - started:.1f}s, {figures['answered']}/{figures['turns']} "
                f"answered, {figures['updates_per_s'] or 0} updates/s",
                file=sys.stderr,
            )
    bot = report.medians(per_kind["bot"]) if per_kind["bot"] else {}
    floor = report.medians(per_kind["floor"]) if per_kind["floor"] else {}
    ratio = report.ratios(bot, floor) if bot and floor else {}
    out: dict[str, Any] = {
        "about": scenario.about,
        "runs": runs,
        "bot": bot,
        "floor": floor,
        "ratio": ratio,
        "targets": report.evaluate(scenario.name, bot, ratio) if bot else [],
        "flags": report.flags(scenario.name, bot, floor, env.group_timeout_s),
        "per_run": per_kind,
    }
    if error:
        out["error"] = error
    return out


async def _main(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    subject_cpus, bench_cpus = _cpus(args.no_pin)
    procstat.pin(os.getpid(), bench_cpus)
    redis_pid = _redis_pid(redis_url)
    if redis_pid is not None:
        procstat.pin(redis_pid, bench_cpus)
    proxy = None
    if not args.no_redis_proxy:
        parts = urlsplit(redis_url)
        proxy = RedisProxy(parts.hostname or "127.0.0.1", parts.port or 6379, bench_cpus)
        proxy.start()
    runs = args.runs or (1 if args.quick else 3)
    catalogue = scenarios(quick=args.quick)
    chosen = [catalogue[name] for name in (args.scenario or NAMES)]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        env = Environment(
            python=sys.executable,
            redis_url=redis_url,
            redis_pid=redis_pid,
            proxy=proxy,
            workdir=Path(workdir),
            subject_cpus=subject_cpus,
            group_timeout_s=args.group_timeout,
            limit_drafts=args.limit_drafts,
            bot_env=dict(item.split("=", 1) for item in args.bot_env),
            profile_dir=args.profile,
            clean_env=subject_base_env(),
        )
        try:
            results = {s.name: await _scenario(s, runs, env, not args.no_floor) for s in chosen}
        finally:
            if proxy is not None:
                proxy.stop()
    return {
        "machine": _machine(),
        "settings": {
            "runs": runs,
            "quick": args.quick,
            "pinned": {"subject": sorted(subject_cpus or ()), "bench": sorted(bench_cpus or ())},
            "redis_round_trips": "counting proxy" if proxy else "not measured",
            "limit_drafts": args.limit_drafts,
            "bot_env": args.bot_env,
        },
        "wall_s": round(time.monotonic() - started, 1),
        "scenarios": results,
    }


def main() -> None:
    args = _parser().parse_args()
    if args.runs is not None and args.runs < 1:
        sys.exit("bench: --runs must be at least 1")
    if args.profile and shutil.which("py-spy") is None:
        sys.exit("bench: --profile needs py-spy on PATH (pip install py-spy into .venv)")
    _raise_fd_limit()
    given = os.environ.get("BENCH_REDIS_URL")
    with contextlib.ExitStack() as stack:
        url = given or stack.enter_context(_own_redis())
        summary = asyncio.run(_main(args, url))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    short = {
        **summary,
        "scenarios": {
            name: {k: v for k, v in s.items() if k != "per_run"}
            for name, s in summary["scenarios"].items()
        },
    }
    print(json.dumps(short, indent=2))
    print(report.table(summary))
    print(f"\n(total {summary['wall_s']} s; per-run figures in --json)")


if __name__ == "__main__":
    main()
