"""Run a command as if on a slower machine: every process it starts gets a CPU share of its own.

    sudo .venv/bin/python benchmarks/slow_cores.py --speed 2.24 [--cores 2] -- make test
    sudo .venv/bin/python benchmarks/slow_cores.py --fraction 0.4 --calibrate

This project's machines differ about 5× in speed (``benchmarks/seg_cost.py --profile demo``, one
thread: 10-11 steps/s on the fast class, 2.2 on the slow one), and a change must pass CI on
either. Without a slow machine at hand, this script emulates one on a faster machine with Linux
control groups (the ``cpu`` controller, cgroup v1 as on this project's machines, or v2): the
command runs in a group capped at ``cores × fraction`` of a CPU, and a watcher moves every process
of it, as soon as it appears, into a group of its own capped at ``fraction`` of a CPU. So each
process (one torch thread each, as ``make`` runs them) computes at most ``fraction`` as fast as
here, like a process on one slower core, and all of them together at most ``cores`` such cores.
Each group's CPU weight follows its process's ``nice`` value (the kernel's own weights), so that
processes competing for the tree's quota share it as their nice values say (``make test`` runs
its side tests ``nice -n 10``); without that, separate groups would all weigh the same. This is
only part of what a real machine does: a process held at its own cap leaves the rest of the
tree's quota to the others, ``nice``'d or not, so ``make test``'s side tests still take more from
the book build here than they would on two real cores of that speed (benchmarks/RESULTS.md, "On
an emulated slow machine, nice-weighted").

``--speed S`` chooses the fraction: it measures ``seg_cost.py --profile demo`` (one thread) in a
capped group at a trial fraction and scales the fraction by ``S`` over the measured speed, twice
(CFS quotas cost a little throughput, so the fraction is set from measurements, not from the ratio
of speeds); the speed measured at the chosen fraction is printed, and a fixed ``--fraction``
skips the search (on this project's Intel machine, 0.30 gave 2.1 to 2.2 steps/s). ``--calibrate`` only measures and prints.

What it does not emulate: a slow machine's memory bandwidth and caches (a slower CPU is not
slower by one factor in every workload: chapter 2's style transfer ran 2.9× slower on the slow
class than on a fast machine, against 4.8× for ``seg_cost``), and a process with several threads
is capped as one core. Scaling every process by one factor is therefore, for this book, an upper
bound on a slow machine's time. Needs root (writing ``/sys/fs/cgroup``).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERIOD_US = 20_000  # CFS period of the quotas: short, so a capped process runs in small slices
# CFS weight of each nice value -20 … 19 (sched_prio_to_weight, kernel/sched/core.c): nice 0 is
# 1024; a group's cpu.shares (v1) is such a weight
NICE_WEIGHTS = (88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
                9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
                1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
                110, 87, 70, 56, 45, 36, 29, 23, 18, 15)


def nice_of(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The nice value of ``pid`` (field 19 of ``/proc/<pid>/stat``), or None if it ended."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16])  # fields from the 3rd on, after the name


class Groups:
    """The capped groups: ``slow`` (all processes, ``cores × fraction``) and ``slow/p<pid>``
    (one process, ``fraction``), under the ``cpu`` controller of cgroup v1 or v2."""

    def __init__(self, fraction: float, cores: int, name: str = "glua-slow",
                 base: Path = Path("/sys/fs/cgroup")):
        v1 = base / "cpu"
        self.v2 = not (v1 / "cpu.cfs_quota_us").exists()
        self.root = (base if self.v2 else v1) / name
        self.fraction, self.cores = fraction, cores
        self.nice: dict[str, int] = {}  # the nice value each group's weight was set for
        if self.v2:
            (self.root.parent / "cgroup.subtree_control").write_text("+cpu")
        self.root.mkdir(exist_ok=True)
        if self.v2:
            (self.root / "cgroup.subtree_control").write_text("+cpu")
        for group in self.root.glob("p[0-9]*"):  # an earlier trial's: cgroup v1 refuses a
            group.rmdir()  # parent's quota below a child's (EINVAL), for a moment after rmdir too
        for attempt in range(50):
            try:
                self._cap(self.root, cores * fraction)
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    def _cap(self, group: Path, cpus: float) -> None:
        quota = max(1000, int(cpus * PERIOD_US))
        if self.v2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))

    def weigh(self, group: Path, nice: int) -> None:
        """Give ``group`` the CPU weight of a process at ``nice``. The watcher calls it on every
        sweep, so a process that changes its niceness after it started (``nice -n 10 cmd``
        does, before its exec) gets the new weight."""
        if self.nice.get(group.name) == nice:
            return
        try:
            if self.v2:
                (group / "cpu.weight.nice").write_text(str(nice))
            else:
                (group / "cpu.shares").write_text(str(NICE_WEIGHTS[min(max(nice, -20), 19) + 20]))
        except OSError:  # the group went away
            return
        self.nice[group.name] = nice

    @staticmethod
    def procs(group: Path) -> list[int]:
        try:
            return [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def enter(self, pid: int) -> None:
        """Move ``pid`` into a group of its own."""
        group = self.root / f"p{pid}"
        if not group.is_dir():
            group.mkdir()
            self._cap(group, self.fraction)
        try:
            (group / "cgroup.procs").write_text(str(pid))
        except OSError:  # it ended meanwhile
            pass

    def watch(self, stop: threading.Event) -> None:
        """Until ``stop``: give every new process of the tree a group of its own."""
        sweep = 0
        while not stop.is_set():
            for pid in self.procs(self.root):
                self.enter(pid)
            for group in [g for g in self.root.iterdir() if g.is_dir() and g.name[1:].isdigit()]:
                pids = self.procs(group)
                for pid in pids:
                    if f"p{pid}" != group.name:  # a child: inherited its parent's group
                        self.enter(pid)
                    else:
                        nice = nice_of(pid)
                        if nice is not None:
                            self.weigh(group, nice)
                if not pids and sweep % 100 == 0:
                    try:
                        group.rmdir()
                        self.nice.pop(group.name, None)
                    except OSError:
                        pass
            sweep += 1
            time.sleep(0.05)

    def run(self, command: list[str]) -> int:
        """Run ``command`` inside the groups; its exit status."""
        stop = threading.Event()
        watcher = threading.Thread(target=self.watch, args=(stop,), daemon=True)
        watcher.start()

        def inside() -> None:  # in the child, before exec: join the capped tree
            (self.root / "cgroup.procs").write_text(str(os.getpid()))

        env = {**os.environ, "GLUA_EMULATED": f"{self.cores} cores at {self.fraction:.3f} of a "
               "CPU each (benchmarks/slow_cores.py)"}  # machine_speed.py names the machine so
        try:
            return subprocess.call(command, preexec_fn=inside, env=env)
        finally:
            stop.set()
            watcher.join()


def seg_speed(groups: Groups, steps: int = 30) -> float:
    """``seg_cost.py --profile demo`` (one thread) measured inside ``groups``: steps/s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "seg_cost.py"), "--profile", "demo",
         "--steps", str(steps), "--device", "cpu"],
        preexec_fn=lambda: groups.enter(os.getpid()),  # capped as one process
        capture_output=True, text=True, env=env, check=True).stdout
    return float(re.search(r"speed\s*:\s*([0-9.]+) steps/s", out).group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=None,
                        help="emulate a machine of this demo speed (seg_cost steps/s, 1 thread)")
    parser.add_argument("--fraction", type=float, default=None,
                        help="the CPU share of each process (instead of --speed)")
    parser.add_argument("--cores", type=int, default=2, help="cores of the emulated machine")
    parser.add_argument("--calibrate", action="store_true", help="only measure seg_cost")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    if (args.speed is None) == (args.fraction is None):
        parser.error("give --speed or --fraction")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command and not args.calibrate:
        parser.error("no command (put it after --)")
    if os.geteuid() != 0:
        parser.error("needs root to write /sys/fs/cgroup")
    fraction = args.fraction if args.fraction is not None else 0.5
    if args.speed is not None:  # two rounds: the speed is not quite proportional to the share
        for _ in range(2):
            trial = seg_speed(Groups(fraction, args.cores))
            print(f"slow-cores: seg_cost at a share of {fraction:.3f}: {trial:.2f} steps/s",
                  flush=True)
            fraction = min(1.0, fraction * args.speed / trial)
    groups = Groups(fraction, args.cores)
    measured = seg_speed(groups)
    print(f"slow-cores: each process at most {fraction:.3f} of a CPU, {args.cores} such cores; "
          f"seg_cost --profile demo (1 thread) inside: {measured:.2f} steps/s", flush=True)
    if args.calibrate:
        return 0
    start = time.perf_counter()
    status = groups.run(command)
    print(f"slow-cores: {' '.join(command)}: exit {status} after "
          f"{time.perf_counter() - start:.0f} s (each process at most {fraction:.3f} of a CPU; "
          f"seg_cost inside read {measured:.2f} steps/s)", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
