"""Loaded (through PYTHONPATH) only by the processes the tests run under faketime.

libfaketime 0.9.10 (Debian 12) with FAKETIME_DONT_FAKE_MONOTONIC=1 breaks time.sleep() on
Python >= 3.11, which sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): the library
shifts the deadline by the fake offset and the kernel answers EINVAL (wolfcw/libfaketime#426).
Without that option the monotonic clock is faked too and every timed wait on a lock hangs
(sem_clockwait is not intercepted). So: real monotonic time, and sleep through select(),
which waits for a duration. The wall clock — what the test skews — stays fake.
"""
import select
import time


def _sleep(seconds):
    select.select([], [], [], seconds)


time.sleep = _sleep
