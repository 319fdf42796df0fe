"""OctoPrint's connectivity check pointed at a loopback port the test opens and closes:
closed, OctoPrint says offline although the tracking receiver is reachable (as with a
blocked DNS port, OctoPrint issue 3840)."""

from __future__ import annotations

import socket
from typing import Any, Dict, Optional

from tools.server import OctoPrintServer


class OnlineCheckPort:
    def __init__(self) -> None:
        self._socket: Optional[socket.socket] = None
        self.port = 0
        self.open()

    def open(self) -> None:
        """Listening: OctoPrint's check says online."""
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", self.port))
        probe.listen(8)
        self.port = probe.getsockname()[1]
        self._socket = probe

    def close(self) -> None:
        """Refusing: OctoPrint's check says offline."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def config(self) -> Dict[str, Any]:
        """``extra_config`` for octoprint_factory: the check on, probing this port."""
        check = {"enabled": True, "host": "127.0.0.1", "port": self.port, "name": "", "interval": 3600}
        return {"server": {"onlineCheck": check}}

    @staticmethod
    def recheck(server: OctoPrintServer, interval: int) -> None:
        """A changed check setting makes OctoPrint check at once (pass a new interval each time)."""
        response = server.api("POST", "/api/settings", json={"server": {"onlineCheck": {"interval": interval}}})
        assert response.status_code == 200, response.text
