"""The filesystem broker of the default setup (`make run` without Redis), safe on a full disk.

kombu's filesystem transport writes a message straight into the queue folder. A write that
fails (a full disk) leaves an empty or cut-short message file there, and a worker that reads
it dies ("Unrecoverable error: JSONDecodeError"), and dies again after each restart, once per
such file. Here a message is written under a name the queue ignores and renamed into the
queue only when whole (a rename is atomic), and a message file that still cannot be decoded
(written by another version, or cut short by a crash of the machine) is logged and skipped
instead of ending the worker. Nothing is lost with such a message: a task only asks for work
whose state is in the database (the outbox's minute sweep sends what was not published).
"""

import contextlib
import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu reads the folder in the order of the names: the milliseconds are padded so
        # that a message sent at 999 ms is read before one sent at 1000 ms.
        name = f"{round(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = path + ".partial"  # not "<queue>.msg": no reader takes it
        try:
            with open(partial, "wb", buffering=0) as file:
                file.write(str_to_bytes(dumps(payload)))
            os.rename(partial, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _get(self, queue):
        while True:  # until a message decodes, or the folder has none (Empty)
            try:
                return super()._get(queue)
            except ValueError:  # JSONDecodeError: the file was already taken out of the queue
                logger.error("a broker message file could not be decoded; skipped")


class Transport(filesystem.Transport):
    Channel = Channel
