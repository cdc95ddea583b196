"""Processes as /proc shows them, for the desktop end-to-end test and the desktop memory bench:
which processes run below a pid, their executable names, whether one is alive."""
import os


def alive(pid):
    """Running (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return ") Z " not in f.read()
    except FileNotFoundError:
        return False


def exe(pid):
    """The executable's file name, or "?" when it cannot be read."""
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return "?"


def table():
    """[(pid, parent pid, executable name)] of every process now."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": the command may hold spaces and parentheses.
        out.append((int(p), int(stat.rsplit(")", 1)[1].split()[1]), exe(p)))
    return out


def children(pid):
    """The direct children of `pid`."""
    return [p for p, parent, _ in table() if parent == pid]


def tree(pid):
    """[(pid, parent pid, executable name)] of every process below `pid`."""
    procs = table()
    below, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for p in procs:
            if p[1] == parent:
                below.append(p)
                todo.append(p[0])
    return below
