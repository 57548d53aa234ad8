"""Opening directories other local users may have planted or swapped: never through a symlink, owner checked."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable

from aotbuild.errors import InfraError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_beneath(parent_fd: int | None, name: str, shown: str) -> int:
    """A descriptor for the directory `name` (relative to `parent_fd`, or absolute), refusing a symlink;
    FileNotFoundError if it is not there."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        raise
    except OSError as e:  # ELOOP: a symlink; ENOTDIR: a file
        raise InfraError(f"{shown} is not a plain directory ({os.strerror(e.errno or 0)}): another user may have "
                         "replaced it with a symlink; aotbuild will not follow it\n"
                         f"  fix: look at it, remove it (rm -r {shown}) and run again") from None


def check_trusted(fd: int, shown: str, owners: Iterable[int], group_writable: bool) -> None:
    """The directory must be owned by one of `owners`, not writable by others, and (unless `group_writable`,
    for a group-shared cache) not by the group either."""
    st = os.fstat(fd)
    owners = set(owners)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in owners:
        raise InfraError(f"{shown} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): another user may "
                         "have planted it; aotbuild will not use or clean it\n"
                         f"  fix: look at it, remove it (rm -r {shown}) and run again")
    open_to = 0o002 if group_writable else 0o022
    if st.st_mode & open_to:
        raise InfraError(f"{shown} is writable by {'anyone' if st.st_mode & 0o002 else 'its group'} "
                         f"(mode {stat.filemode(st.st_mode)}): aotbuild will not use or clean it\n"
                         f"  fix: chmod {'o-w' if group_writable else 'go-w'} {shown}, or remove it")


def open_dirs(parent: str, names: Iterable[str], check: Callable[[int, str], None] | None = None) -> int | None:
    """A descriptor for parent/names[0]/names[1]/..., each directory opened beneath the last (never through a
    symlink) and passed to `check` with its path; None if one does not exist."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = parent.rstrip("/")
    try:
        for name in names:
            shown = f"{shown}/{name}"
            try:
                child = open_beneath(fd, name, shown)
            except FileNotFoundError:
                return None
            os.close(fd)
            fd = child
            if check is not None:
                check(fd, shown)
        result, fd = fd, -1
        return result
    finally:
        if fd >= 0:
            os.close(fd)


def open_private(parent: str, names: tuple[str, ...]) -> int | None:
    """open_dirs with each directory ours and not writable by others (/tmp, ("aotbuild-<uid>", "tmp"))."""
    return open_dirs(parent, names, lambda fd, shown: check_trusted(fd, shown, (os.geteuid(),), group_writable=False))
