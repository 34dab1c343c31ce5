# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Threaded HTTP(S) servers for the apps, each on its own thread."""
from __future__ import annotations

import logging
import ssl
import sys
import threading

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

# Seconds a connection may stay idle (TLS handshake included) before the server drops it.
CONNECTION_TIMEOUT_SECONDS = 60


class LabRequestHandler(WSGIRequestHandler):
    """Request handler that completes the TLS handshake on its own thread, with a timeout."""

    timeout = CONNECTION_TIMEOUT_SECONDS

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    # http.server's send_response() always sends a Date header. These three methods send it only
    # when the app has not set its own, which the clock_offset fault does.
    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self._date_sent = False

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "date":
            self._date_sent = True
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if not getattr(self, "_date_sent", True):
            super().send_header("Date", self.date_time_string())
            self._date_sent = True
        super().end_headers()


class LabWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server, with TLS handshakes moved off the accept loop.

    werkzeug wraps the listening socket so ``accept()`` performs the handshake, and one client
    that connects and stays silent then blocks every other client. Here the handshake runs in
    the handler thread instead.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str, host: str, port: int, app, logger: logging.Logger,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.logger = logger
        super().__init__(host, port, app, handler=LabRequestHandler)
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        # werkzeug reads this attribute to set wsgi.url_scheme to https.
        self.ssl_context = ssl_context

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        self.logger.warning("%s: connection from %s failed: %s", self.name, client_address[0], error)


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """Return a TLS 1.2+ server context with the given certificate chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class ServerSet:
    """Servers started together and stopped together."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.servers: list[LabWSGIServer] = []
        self.threads: list[threading.Thread] = []

    def add(self, server: LabWSGIServer) -> None:
        self.servers.append(server)

    def start(self) -> None:
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, name=f"serve-{server.name}", daemon=True)
            thread.start()
            self.threads.append(thread)
            scheme = "https" if server.ssl_context else "http"
            self.logger.info("%s listening on %s://%s:%d", server.name, scheme, server.host, server.port)

    def stop(self) -> None:
        for server in self.servers:
            if self.threads:
                server.shutdown()
            server.server_close()
            self.logger.info("%s stopped", server.name)
        for thread in self.threads:
            thread.join(timeout=5)
