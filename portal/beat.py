"""Celery beat's scheduler: its schedule file is a cache, and a full disk neither stops beat
nor corrupts the file.

beat keeps in `CELERY_BEAT_SCHEDULE_FILENAME` (a shelve; on Python 3.13 an SQLite file,
written in transactions) when each periodic task last ran, so that a restart does not run
them all again at once. Every periodic task of ours is idempotent, so the file is only a
cache. Celery's own PersistentScheduler has two problems with a disk that fills up: a write
that fails at a sync raises out of beat's loop and ends beat, and shelve, when a write fails
in the middle of its sync, stops writing back for good (so beat, had it survived, would never
save its schedule again). Here:

1. the file cannot be opened or set up (a full disk, a read-only folder): beat runs from
   memory (each task runs one interval after beat starts) and says so once;
2. a sync fails: logged once, beat goes on from memory, and the next sync tries again and
   saves everything once there is room; the file keeps its last complete state meanwhile;
3. closing at shutdown cannot save: logged, beat still stops cleanly.
"""

import contextlib
import logging

from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)


class _InMemory(dict):
    """A schedule store that keeps nothing on disk."""

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Scheduler(PersistentScheduler):
    _in_memory = False
    _save_failing = False

    def _open_schedule(self):
        if self._in_memory:
            return _InMemory()
        return super()._open_schedule()

    def setup_schedule(self) -> None:
        try:
            super().setup_schedule()
        except OSError as exc:  # dbm's errors are OSErrors
            logger.error(
                "beat: schedule file %s unusable (%s); running from memory until restarted",
                self.schedule_filename,
                exc,
            )
            self._release_store()
            self._in_memory = True
            super().setup_schedule()

    def sync(self) -> None:
        try:
            super().sync()
        except OSError as exc:
            if hasattr(self._store, "writeback"):  # a shelve
                # shelve leaves write-back off when a write fails mid-sync: turn it on again,
                # so the entries stay cached and the next sync writes them all.
                self._store.writeback = True
            if not self._save_failing:
                logger.error(
                    "beat: could not save the schedule file %s (%s); going on from memory "
                    "and trying again at each sync",
                    self.schedule_filename,
                    exc,
                )
            self._save_failing = True
            return
        if self._save_failing:
            logger.warning("beat: schedule file %s saved again", self.schedule_filename)
            self._save_failing = False

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            logger.error("beat: schedule not saved at shutdown (%s)", exc)
            self._release_store()

    def _release_store(self) -> None:
        store, self._store = self._store, None
        with contextlib.suppress(Exception):
            store.dict.close()  # a shelve's file, without its close(), which would write
