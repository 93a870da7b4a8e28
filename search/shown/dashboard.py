"""`dashboard`: optuna-dashboard on a study's storage, with the artifact store the engine writes to.

optuna-dashboard's ``run_server`` binds inside the call that blocks, so nothing could say "ready"
at the right moment; its ``wsgi`` app served by the standard library lets us bind first (a busy
port is one clear line), then print the URL — once it is printed, the server answers.
"""

from __future__ import annotations

import ipaddress
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard

from gic_common.errors import UserError
from search.artifacts import artifact_dir, artifact_store
from search.optuna_private import study_id, study_storage
from search.shown.importance import ignore_few_trials_warnings
from search.workers.storage import load_study

__all__ = ["make_dashboard", "serve"]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # the browser loads several files at once; Ctrl-C never waits for them


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
        pass  # one line per request would bury the URL


def make_dashboard(storage_url: str, study_name: str | None, host: str = "127.0.0.1", port: int = 8080):
    """Binds the server and returns it with the study's URL; ``port`` 0 picks a free port."""
    study = load_study(study_name, storage_url)  # an unknown study or storage fails before binding
    app = optuna_dashboard.wsgi(study_storage(study), artifact_store=artifact_store(storage_url))
    try:
        server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port") from None
    if not ipaddress.ip_address(server.server_address[0]).is_loopback:  # the address bound, names resolved
        print(f"warning: listening on {host}: the study is reachable from the network, without a password",
              file=sys.stderr, flush=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/dashboard/studies/{study_id(study)}"  # the storage's id
    return server, url, study


def serve(storage_url: str, study_name: str | None, host: str = "127.0.0.1", port: int = 8080) -> None:
    server, url, study = make_dashboard(storage_url, study_name, host, port)
    ignore_few_trials_warnings()  # else every page load of a young study prints one warning a parameter
    print(f"optuna-dashboard for study {study.study_name!r} ({len(study.trials)} trials): {url}", flush=True)
    print(f"artifacts from {artifact_dir(storage_url)}; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
