"""Job-start lateness of Pickup's peers: BullMQ, Celery and arq (issue 14).

    .venv/bin/python -m bench.peers                          # every peer, both shapes, background load 1
    .venv/bin/python -m bench.peers --peer celery --shape burst --jobs 200 --runs 3

N jobs are due evenly over W seconds (spread) or all at one instant (burst),
enqueued a few seconds ahead; each records when its worker starts it, and the
lateness is that start minus its due time. It stops at the job's start: no
message reaches a customer, so compare it with bench.lateness as a lower
bound of what each peer would give. One worker process per peer, as Pickup
has one run_queue; each run has its own private redis-server.

The peers are installed on first use into environments of their own:
Celery and arq into virtual environments under bench/peers/.envs/ (from
PyPI), BullMQ from bench/peers/node/package-lock.json with the machine's
Node and npm. They are a measuring tool, not a dependency of Pickup.
"""

from __future__ import annotations

import argparse

from bench import load
from bench.common import print_table, write_results
from bench.peers import environments
from bench.peers.measure import WORKER_NOTES, measure

PEERS = ["bullmq", "celery", "arq"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", choices=[*PEERS, "all"], default="all")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1, help="runs of each peer and shape")
    parser.add_argument("--window", type=float, default=1.0, help="seconds the spread shape spreads over")
    parser.add_argument("--shape", choices=["spread", "burst", "both"], default="both")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="jobs one worker runs at once: BullMQ concurrency, Celery threads, arq max_jobs (default 10)")
    parser.add_argument("--arq-poll-delay", type=float, default=0.5, help="seconds between arq's polls (its default 0.5)")
    load.add_argument(parser)
    args = parser.parse_args()
    peers = PEERS if args.peer == "all" else [args.peer]
    shapes = ["spread", "burst"] if args.shape == "both" else [args.shape]
    for peer in peers:
        environments.peer_command(peer)  # installs on first use, before anything is timed
    runs = []
    for peer in peers:
        for shape in shapes:
            for _ in range(args.runs):
                with load.background_load(args.background_load):
                    runs.append(measure(peer=peer, jobs=args.jobs, shape=shape, window=args.window,
                                        concurrency=args.concurrency, arq_poll_delay=args.arq_poll_delay))
    rows = [{"peer": r["peer"], "shape": r["shape"], "jobs": r["jobs"], **{k: r["lateness_ms"][k] for k in ("p50", "p90", "p99", "max")},
             "lost": r["lost"], "dup": r["duplicates"], "early": r["early"]} for r in runs]
    print_table(f"Job-start lateness, due time → the worker starts the job (ms), background load {args.background_load}", rows,
                ["peer", "shape", "jobs", "p50", "p90", "p99", "max", "lost", "dup", "early"])
    for peer in peers:
        worker = WORKER_NOTES[peer].format(concurrency=args.concurrency, arq_poll_delay=args.arq_poll_delay)
        print(f"{peer} ({environments.versions(peer)}): {worker}")
    name = "peers" if args.peer == "all" else f"peers-{args.peer}"
    settings = {"background_load": args.background_load, "concurrency": args.concurrency, "arq_poll_delay_s": args.arq_poll_delay}
    print(f"results: {write_results(name, {**settings, 'runs': runs})}")


if __name__ == "__main__":
    main()
