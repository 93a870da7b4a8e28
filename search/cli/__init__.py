"""`python -m search ...`: the command line. Each subcommand is a thin layer over one module:
parser.py has the grammar, search_commands.py and after_commands.py the commands, and this module
runs one, turning a UserError into one line and a stop signal into its exit status."""

from __future__ import annotations

import os
import signal
import sys
import time

from gic_common.errors import TrialVerdict, UserError
from search.cli.after_commands import cmd_dashboard, cmd_export, cmd_report, cmd_rerun, cmd_retrain
from search.cli.parser import build_parser
from search.cli.search_commands import cmd_best, cmd_data, cmd_run, cmd_worker
from search.job.clock import process_started

__all__ = ["main"]


COMMANDS = {"data": cmd_data, "run": cmd_run, "best": cmd_best, "retrain": cmd_retrain, "export": cmd_export,
            "dashboard": cmd_dashboard, "report": cmd_report, "worker": cmd_worker, "rerun": cmd_rerun}


# Commands that handle Ctrl-C and SIGTERM themselves: run and worker fail and queue again the trial
# they were running, dashboard stops its server.
_OWN_STOP = ("run", "worker", "dashboard")


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # output still buffered meets a closed pipe here, inside the try
        return code
    except BrokenPipeError:  # the reader (`| head -1`) has all it wanted: stop quietly, as `cat` would
        # The interpreter flushes stdout again on its way out; into /dev/null that says nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str] | None) -> int:
    # `run --time` counts the user's time from the process's start when this is the program (argv from
    # the command line, and main reached within BEFORE_MAIN_LIMIT of the start: search/job/clock.py),
    # from this call when code calls it with its own argv.
    started = process_started() if argv is None else time.monotonic()
    args = build_parser().parse_args(argv)
    args.started = started
    import optuna

    from search.workers.worker import stop_signals

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what matters
    try:
        if args.command in _OWN_STOP:
            COMMANDS[args.command](args)
            return 0
        with stop_signals() as received:  # SIGTERM too: a stop the clean-up sees, not a silent death
            try:
                COMMANDS[args.command](args)
            except KeyboardInterrupt:
                if args.debug:
                    raise
                signum = received[-1] if received else signal.SIGINT
                print(f"interrupted ({signal.Signals(signum).name}): what it was writing is not saved; files "
                      f"from before are as they were", file=sys.stderr)
                return 128 + signum
    except (UserError, TrialVerdict) as e:  # a verdict here: retraining a trial the search rejected
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
