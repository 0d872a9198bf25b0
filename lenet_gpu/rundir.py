"""A training run's output directory: checked before any work starts, held by one run at a time.

    with RunDir(path, overwrite=False) as run:     # RunDirError, with the CLI's exit status
        ... write run.path / "model.npz" ...

Checks, in order: the path is a directory or can be made one; a file can be written there; no
other live run holds it (a `.lock` file made with O_EXCL, naming the holder's pid and host; a
lock whose process is gone is taken over); and it does not already hold a run unless
`overwrite`. The lock is removed on exit.
"""
import os
import socket
import time
from pathlib import Path

EXIT_BAD_INPUT, EXIT_WRITE, EXIT_BUSY = 2, 4, 5


class RunDirError(Exception):
    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class RunDir:
    def __init__(self, path, overwrite=False, files=("metrics.json", "model.npz")):
        self.path, self.overwrite, self.files = Path(path), overwrite, files
        self.lock = self.path / ".lock"
        self._held = False

    def __enter__(self):
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"--out {p} is a file, not a directory", EXIT_BAD_INPUT)
        try:
            p.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunDirError(f"--out {p}: a part of the path is a file, not a directory",
                              EXIT_BAD_INPUT) from None
        except OSError as e:
            raise RunDirError(f"cannot create --out {p}: {e.strerror or e}", EXIT_WRITE) from None
        self._take_lock()
        try:
            held = [f for f in self.files if (p / f).exists()]
            if held and not self.overwrite:
                raise RunDirError(f"{p} already holds a run ({', '.join(held)}); choose another "
                                  "--out or pass --overwrite", EXIT_BAD_INPUT)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _take_lock(self):
        me = f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._live_holder()
                if holder:
                    raise RunDirError(f"{self.path} is in use by another run ({holder}); wait for "
                                      f"it, or choose another --out (if no run is using it, "
                                      f"delete {self.lock})", EXIT_BUSY) from None
                try:
                    self.lock.unlink()            # its process is gone: take the lock over
                except FileNotFoundError:
                    pass
                continue
            except OSError as e:
                raise RunDirError(f"cannot write in --out {self.path}: {e.strerror or e}",
                                  EXIT_WRITE) from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self._held = True
            return
        raise RunDirError(f"{self.path}: another run took {self.lock} at the same time", EXIT_BUSY)

    def _live_holder(self):
        """'pid N on HOST since T' if the lock's process may still run, else None."""
        try:
            pid, host, *since = self.lock.read_text().split()
            pid = int(pid)
        except (OSError, ValueError):
            return "a lock file that cannot be read"
        where = f"pid {pid} on {host} since {' '.join(since)}"
        if host != socket.gethostname():
            return where                           # another machine: assume it lives
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return where
        return where

    def __exit__(self, *exc):
        if self._held:
            try:
                self.lock.unlink()
            except OSError:
                pass
            self._held = False
