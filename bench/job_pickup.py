"""How soon a queued job starts after a quiet spell: the service's consumer
settings (service.tasks.queue.consumer) against Huey's defaults, measured in
the same run on the same SqliteHuey file.  Prints the median latency of each
and their ratio.  `--quick` is the smoke run `make test` does.
"""
import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from huey.consumer import Consumer  # noqa: E402

from service import config  # noqa: E402
from service.tasks import queue  # noqa: E402


started = {}
done = threading.Event()


def measure(consumer_factory, huey, touch, runs, idle):
    started.clear()
    consumer = consumer_factory(huey)
    consumer.start()
    latencies = []
    try:
        for n in range(runs):
            time.sleep(idle)     # let the consumer back off, as after a quiet spell
            done.clear()
            sent = time.perf_counter()
            touch(n)
            if not done.wait(30):
                raise RuntimeError("job never started")
            latencies.append(started[n] - sent)
    finally:
        consumer.stop(graceful=True)
    return statistics.median(latencies)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    runs, idle = (3, 0.3) if args.quick else (15, 3.0)
    with tempfile.TemporaryDirectory() as folder:
        settings = config.load(environ={"PIXSTOR_QUEUE_URL": f"sqlite:///{folder}/queue.db"})
        huey = queue.configure(settings)

        @huey.task(name="bench.touch")
        def touch(key):
            started[key] = time.perf_counter()
            done.set()

        ours = measure(lambda h: queue.consumer(workers=1, embedded=True), huey, touch, runs, idle)

        class Quiet(Consumer):
            def _set_signal_handlers(self):
                pass
        default = measure(lambda h: Quiet(h, workers=1, periodic=False), huey, touch, runs, idle)
    print(f"job pickup after {idle}s idle, median of {runs}: service settings {ours * 1000:.1f} ms, "
          f"huey defaults {default * 1000:.1f} ms, ratio default/service {default / ours:.1f}x")


if __name__ == "__main__":
    main()
