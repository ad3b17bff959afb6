"""Send what runs could not send: ``python -m reid.tracking.replay FOLDER... [--tracking-uri URI]``.

A run whose tracking server stayed away past the end of the run (or a process killed during an outage) leaves its
unsent records in ``<run folder>/tracking/<run_id>.jsonl`` (reid/tracking/journal.py). This sends them, in order,
to the store the run used (or to ``--tracking-uri``); a run folder, a sweep folder (all its jobs) or a journal
file may be given. Sending twice is harmless (reid/tracking/record_ops.py), so it can simply be run again.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reid.tracking.journal import Journal, find_journals
from reid.tracking.record_ops import send
from reid.tracking.retry import redact_uri, short_reason, use_short_http_retries


def replay(journal: Journal, tracking_uri: str | None = None) -> int:
    """Send ``journal``'s unsent records; returns how many were sent. Raises on the first one the store refuses."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri or journal.header["tracking_uri"])
    sent = 0
    for record in journal.pending():
        send(client, record)
        journal.mark_sent()
        sent += 1
    journal.set_state("ok")
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reid.tracking.replay", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders, sweep folders or journal files")
    parser.add_argument("--tracking-uri", default=None, help="send to this store instead of the one each run used")
    args = parser.parse_args(argv)
    use_short_http_retries()
    journals = [Journal(p) for folder in args.folders for p in find_journals(folder)]
    if not journals:
        print(f"no tracking journals (tracking/*.jsonl) under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    failed = 0
    for journal in journals:
        uri = args.tracking_uri or journal.header["tracking_uri"]
        waiting = len(journal.pending())
        if not waiting:
            continue
        try:
            sent = replay(journal, args.tracking_uri)
        except Exception as e:  # noqa: BLE001 - one line per journal, then the next one
            failed += 1
            print(f"{journal.path}: {short_reason(e)} ({len(journal.pending())} records still unsent)",
                  file=sys.stderr)
            continue
        print(f"{journal.path}: sent {sent} records to {redact_uri(uri)}")
    total = sum(len(j.records) for j in journals)
    print(f"{len(journals)} journals, {total} records, {failed} journals with records still unsent")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
