"""How a sweep stops: Ctrl-C and SIGTERM (a job scheduler's stop, `timeout`, `kill`) alike.

Inside a Tune `fit` a first stop is Tune's own (it saves its state and returns; the invocation is marked
interrupted and `sweeps resume` continues it), and a second one stops at once. Outside a fit, and while
Ray starts, a stop raises KeyboardInterrupt or StopSignal, which the driver cleans up after as after
Ctrl-C. Which stop a fit received decides the exit status (128 + the signal, as a shell reports one).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stops_held_while_ray_starts():
    """A Ctrl-C or SIGTERM that lands while ray.init builds the driver's core worker leaves a half-made one,
    which crashes the driver as it exits (SIGSEGV: exit 139, a core dump; reproduced up to ~0.6 s after Ray's
    "Started a local Ray instance"). The first stop signal is held until ray.init returns, then raised as
    one outside a fit is (KeyboardInterrupt; StopSignal for SIGTERM); a second one, REPEATED_STOP_S or more
    after it, stops at once (a Ray that hangs while it starts). Ray's own SIGTERM handler (sys.exit, which crashes the same way) is not set
    meanwhile: run_sweep sets its own right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import ray._private.utils as ray_utils

    held: list[tuple[int, float]] = []   # (signal, when)

    def hold(signum, frame):
        if signum == signal.SIGTERM and hasattr(signal, "alarm"):
            # Ray's C++ crash handler (absl's failure signal handler, installed as ray.init builds the core
            # worker) saw this SIGTERM first: it passed it on to us and armed alarm(3), whose SIGALRM aborts
            # the process (exit 134 while the driver marks and exits, not 143). No crash: disarm it
            signal.alarm(0)
        if held and time.monotonic() - held[0][1] >= REPEATED_STOP_S:   # within it: the same stop, sent again
            raise StopSignal(signum)                                   # (`timeout` signals child and group)
        if held:
            return
        held.append((signum, time.monotonic()))
        log.warning("%s received while Ray starts: stopping once it has started (send it again to stop at once)",
                    signal.Signals(signum).name)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    set_sigterm_handler = getattr(ray_utils, "set_sigterm_handler", None)
    for s in before:
        signal.signal(s, hold)
    if set_sigterm_handler is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        if set_sigterm_handler is not None:
            ray_utils.set_sigterm_handler = set_sigterm_handler
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    if held:
        raise KeyboardInterrupt() if held[0][0] == signal.SIGINT else StopSignal(held[0][0])


class StopSignal(KeyboardInterrupt):
    """A signal that stops the invocation at once: a SIGTERM outside a `fit` (while it sets up or draws its
    report), or a second stop signal in one. A KeyboardInterrupt, as Ctrl-C's, so everything that cleans up
    after Ctrl-C does after it too; `signum` gives the exit status (128 + it, as a shell reports a signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def _stop_at_once(signum, frame) -> None:
    raise StopSignal(signum)


def sigterm_stops_at_once() -> None:
    """Between `fit`s, SIGTERM raises StopSignal, which marks the invocation interrupted
    (`sweeps.runner._interrupted_if_cut_short`) and exits 143. Ray's driver handler, set by ray.init, called
    sys.exit(15): exit status 15, and a message saying nothing of resuming. `run_sweep` puts back the handler
    of before it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_at_once)


def restores_sigterm_handler(function):
    """`function` leaves SIGTERM's handler as it found it (the CLI's process: Python's default)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)
        before = signal.getsignal(signal.SIGTERM)
        try:
            return function(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)

    return wrapper


# when (time.monotonic) the current `fit` received its SIGTERM; empty until it does (one is pending for Tune)
STOP_SIGNALS: list[float] = []


# SIGTERMs this soon after the first are the same stop delivered again, not a second stop: `timeout`
# signals its child and then its whole process group, and a process-group kill reaches the driver once
# more through `timeout`'s forwarding (a job scheduler may do the same)
REPEATED_STOP_S = 2.0


# the stops (SIGINT, SIGTERM handed over as SIGUSR1) Tune's handlers received in the current `fit`: trial
# statuses do not tell (a restored experiment's ResultGrid calls every trial terminated, and the cells a
# grid search had not generated yet are no trials at all)
STOPS: list[int] = []


_IN_FIT: list[bool] = []   # inside `sigterm_stops_like_ctrl_c`, which puts the wrapped handlers back at its end


@contextlib.contextmanager
def sigterm_stops_like_ctrl_c():
    """SIGTERM (a job scheduler's stop, `timeout`, `kill`) stops Tune's `fit` as Ctrl-C does: Tune saves its
    state and returns, the invocation is marked interrupted and `sweeps resume` continues it. Ray's own
    handler would exit at once and leave the parent run `running`. A second signal stops at once
    (SIGTERMs within REPEATED_STOP_S of the first are that one, delivered again).
    Tune's stop is its SIGUSR1 handler, installed by every `fit` (also with TUNE_DISABLE_SIGINT_HANDLER);
    a SIGTERM before Tune installs it is handed over by `SweepCallback.setup`. Tune never puts back the
    handlers it installs, so they are put back here: a later `fit` must not reach an earlier one's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGUSR1)}
    STOP_SIGNALS.clear()
    STOPS.clear()

    def stop(signum, frame):
        if STOP_SIGNALS:
            if time.monotonic() - STOP_SIGNALS[0] < REPEATED_STOP_S:
                return                # the first stop, delivered again
            raise StopSignal(signum)   # the second: as a second Ctrl-C
        STOP_SIGNALS.append(time.monotonic())
        hand_stop_to_tune(saved[signal.SIGUSR1], frame)

    previous = signal.signal(signal.SIGTERM, stop)
    _IN_FIT.append(True)
    HALTS.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        STOP_SIGNALS.clear()
        STOPS.clear()   # HALTS stays till the next fit: the driver raises it after this one (`halted`)
        _IN_FIT.pop()


def record_stops_of_this_fit() -> None:
    """Wrap the stop handlers Tune installed for this `fit` (SIGINT, SIGUSR1) to record each stop in STOPS
    before Tune handles it. `sigterm_stops_like_ctrl_c` puts the handlers of before the fit back after it."""
    if threading.current_thread() is not threading.main_thread() or not _IN_FIT:
        return
    for signum in (signal.SIGINT, signal.SIGUSR1):
        tunes = signal.getsignal(signum)
        if not callable(tunes) or getattr(tunes, "records_stops", False):
            continue

        def recording(sig, frame, tunes=tunes):
            STOPS.append(sig)
            return tunes(sig, frame)

        recording.records_stops = True
        recording.tunes = tunes   # Tune's own, which `halt_fit` calls: a halt is no stop signal received
        signal.signal(signum, recording)


# why the driver itself stopped the current `fit` (`halt_fit`), first first: an error to raise once it has ended
HALTS: list[Exception] = []


def halt_fit(why: Exception) -> bool:
    """Stop the current `fit` as a first Ctrl-C does, for `why` (kept in HALTS for the driver to raise once the fit
    has returned): Tune saves its state with the unfinished trials (a trial it had queued to retry, those running)
    as they are, and `sweeps resume` continues them from their checkpoints. It counts as no stop signal received
    (`stop_received`, the exit status). False where this fit's Tune stop is not at hand (outside a fit, another
    thread than the main one, a fit without SweepCallback): the fit goes on as it would have."""
    if threading.current_thread() is not threading.main_thread() or not _IN_FIT:
        return False
    tunes = getattr(signal.getsignal(signal.SIGUSR1), "tunes", None)   # wrapped by `record_stops_of_this_fit`
    if not callable(tunes):
        return False
    HALTS.append(why)
    tune_log = logging.getLogger("ray.tune.tune")   # Tune's "Stop signal received (e.g. via SIGINT/Ctrl+C)": not so
    level = tune_log.level
    tune_log.setLevel(logging.ERROR)
    ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        tunes(signal.SIGUSR1, None)
    finally:
        tune_log.setLevel(level)
        # Tune's stop puts back the SIGINT handler of before the fit, as after a first Ctrl-C: the researcher's
        # first Ctrl-C after a halt would stop at once (a KeyboardInterrupt as Tune saves its state, the sweep
        # marked interrupted, the full disk said only in the earlier warning). Theirs is a first Ctrl-C still.
        if ctrl_c is not None and signal.getsignal(signal.SIGINT) is not ctrl_c:
            signal.signal(signal.SIGINT, ctrl_c)
    return True


def halted() -> Exception | None:
    """Why the driver stopped the current `fit` (`halt_fit`), the first reason; None where it did not."""
    return HALTS[0] if HALTS else None


def hand_stop_to_tune(before_fit, frame=None) -> bool:
    """Call Tune's stop (its SIGUSR1 handler) if this `fit` has installed it; False if not yet."""
    tune_stop = signal.getsignal(signal.SIGUSR1)
    if not callable(tune_stop) or tune_stop is before_fit:
        return False
    tune_stop(signal.SIGUSR1, frame)
    return True


def stop_received() -> int | None:
    """The stop the current `fit` received: SIGTERM (handed to Tune as SIGUSR1), SIGINT, or a SIGUSR1 sent
    to the driver directly (Tune's own stop signal); None when none came."""
    if STOP_SIGNALS:
        return signal.SIGTERM
    if signal.SIGINT in STOPS:
        return signal.SIGINT
    return STOPS[0] if STOPS else None


def was_interrupted(grid) -> bool:
    """Tune returns normally on SIGINT (state saved): a stop its handlers received tells (SweepCallback wraps
    them), a stop of the driver's own (`halt_fit`: a full disk), or, where no callback of ours ran, trials neither
    terminated nor errored. A halt stopped at a trial's last failure can leave every trial Tune had made ended (a
    grid's cells not generated yet are no trials): the driver must not then start those cells in a new fit."""
    return bool(STOPS) or bool(HALTS) or grid.num_terminated + grid.num_errors < len(grid)
