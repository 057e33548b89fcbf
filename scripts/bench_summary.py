"""Every method of every task side by side — quality, latency, frames/s, peak memory — on the same test windows, in
one run: writes docs/bench/summary.json and regenerates the summary section of docs/BENCHMARKS.md (between
``<!-- bench-summary:begin -->`` and ``<!-- bench-summary:end -->``). ``make bench`` runs it. What every figure
measures: `motionsynth.bench.summary`.

    .venv/bin/python scripts/bench_summary.py --data cache/bandai2                      # shipped models, CPU
    .venv/bin/python scripts/bench_summary.py --data cache/bandai2 --model runs/cvae/best \
        --classifier runs/classifier/model --limit 8 --json /tmp/summary.json --markdown /tmp/summary.md
    .venv/bin/python scripts/bench_summary.py --data cache/bandai2 --device cuda           # on a GPU

Default window counts are sized for about 30–45 minutes on a 2-core CPU with the shipped models: the filters' tuning
on val (≈ 7 min, fixed) and the HM-VAE prior's latent optimisation (≈ 5 min per window over the four tasks: it gets
``--prior-limit`` 3 windows) are the slow parts; every other method costs well under a second per window.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="cache/bandai2", help="prepared motion cache (default cache/bandai2)")
    p.add_argument("--model", action="append", default=None,
                   help="learned model: shipped name, run folder or checkpoint folder; repeatable "
                        "(default: every shipped task model)")
    p.add_argument("--classifier", default=None,
                   help="action classifier scoring generation (default: the shipped classifier-bandai if it ships; "
                        "none: generation is skipped with a note)")
    p.add_argument("--tasks", default="",
                   help="comma-separated subset of the tasks with a benchmark protocol (default: every one)")
    p.add_argument("--limit", type=int, default=33,
                   help="test windows per task, evenly spaced (default 33: they include the prior's 3)")
    p.add_argument("--all-windows", action="store_true", help="every test window (no --limit)")
    p.add_argument("--prior-limit", type=int, default=3,
                   help="test windows per task for the HM-VAE prior families, evenly spaced (default 3; a subset\n"
                        "of the others' when limit - 1 is a multiple of prior-limit - 1)")
    p.add_argument("--prior-option", action="append", default=[],
                   help="option of the HM-VAE prior's method, KEY=VALUE (e.g. restarts=4); repeatable")
    p.add_argument("--no-baselines", action="store_true",
                   help="learned models only (e.g. a GPU run: the baselines run on the CPU anyway)")
    p.add_argument("--option", action="append", default=[],
                   help="option of every learned model's method, KEY=VALUE; repeatable")
    p.add_argument("--samples-per-label", type=int, default=None, help="generate: samples per label (default 20)")
    p.add_argument("--repetitions", type=int, default=None, help="generate: repetitions (default 2)")
    p.add_argument("--tune-windows", type=int, default=None,
                   help="denoise: val windows the filters are tuned on (default: the protocol's 64)")
    p.add_argument("--device", default="cpu", help="where learned models run: cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=Path("docs/bench/summary.json"), help="the summary JSON")
    p.add_argument("--markdown", type=Path, default=Path("docs/BENCHMARKS.md"),
                   help="markdown file whose summary section is regenerated")
    p.add_argument("--no-markdown", action="store_true", help="write the JSON only")
    p.add_argument("--in-process", action="store_true",
                   help="run every row in this process (faster to start; peak memory is not measured)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from motionsynth.bench.summary import run_summary, save_summary, summary_markdown, summary_tasks, update_markdown
    from motionsynth.config import parse_key_values
    from motionsynth.errors import MotionsynthError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = shlex.join(["python", "scripts/bench_summary.py", *argv])
    generate = {k: v for k, v in (("samples_per_label", args.samples_per_label),
                                  ("repetitions", args.repetitions)) if v is not None}
    try:
        summary = run_summary(
            args.data, models=args.model, classifier=args.classifier,
            tasks=[t.strip() for t in args.tasks.split(",") if t.strip()] or None,
            limit=None if args.all_windows else args.limit, prior_limit=args.prior_limit,
            prior_options=parse_key_values(args.prior_option, "--prior-option"),
            options=parse_key_values(args.option, "--option"), generate=generate, tune_windows=args.tune_windows,
            seed=args.seed, device=args.device, threads=args.threads, isolate=not args.in_process,
            baselines={t: [] for t in summary_tasks()} if args.no_baselines else None, command=command,
            log=lambda line: print(line, file=sys.stderr, flush=True))
        save_summary(summary, args.json)
        body = summary_markdown(summary)
        if not args.no_markdown:
            update_markdown(args.markdown, body)
    except MotionsynthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(body)
    print(f"wrote {args.json}" + ("" if args.no_markdown else f" and the summary section of {args.markdown}")
          + f" in {summary['wall_s'] / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
