"""A local SMTP sink in a process of its own, for the benchmark: it counts the messages and
their distinct Message-IDs and writes "received distinct" to a file after each message.
Usage: python devtools/smtp_counter.py COUNT_FILE  (prints its port on the first line)."""

import re
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Counter:
    def __init__(self, path: str):
        self.path = path
        self.received = 0
        self.ids: set[bytes] = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        found = MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.received += 1
            if found:
                self.ids.add(found.group(1))
            line = f"{self.received} {len(self.ids)}\n"
        with open(self.path, "w") as out:
            out.write(line)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(path: str) -> None:
    port = free_port()
    controller = Controller(Counter(path), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main(sys.argv[1])
