"""bench.ansible: what a no-op `pixstor.mgmt.pixstor_space` item costs in a playbook loop,
against an `ansible.builtin.file` item that changes nothing, in the same run.

A loop of N spaces is created, then run again (every item a no-op); a loop of N folders that
already exist is run with ansible.builtin.file. The per-item time is (loop of N - loop of 1) /
(N - 1), so the playbook's own start is left out, each loop timed as the fastest of REPEAT runs;
HTTP requests per item come from the server's access log (the first no-op run).

    python -m bench.ansible [--smoke] [--items N] [--out FOLDER]
"""
import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench import lib
from tests.harness import Server

REPEAT = 2       # runs of each no-op loop; the fastest counts
ACCESS = re.compile(r"service\.access: \S+ (GET|POST|PATCH|DELETE|OPTIONS|HEAD) ")


def playbook(folder, name, count, kind):
    tasks = {
        "space": """    - name: Spaces
      pixstor.mgmt.pixstor_space:
        name: "bench{{ item }}"
        profile: mmfs1-sas1
        relativepath: "bench/s{{ item }}"
        exposers: [mmfs1]
        size: 1GiB
""",
        "file": f"""    - name: Folders
      ansible.builtin.file:
        path: "{folder}/folders/f{{{{ item }}}}"
        state: directory
        mode: "0755"
"""}[kind]
    path = Path(folder) / f"{name}.yml"
    path.write_text(f"""---
- name: Bench
  hosts: localhost
  gather_facts: false
  tasks:
{tasks}      loop: "{{{{ range({count}) | list }}}}"
""")
    return path


def run(path, env, repeat=1):
    """(seconds, tasks changed) of a playbook run; the fastest of `repeat` runs (the no-op loops
    may run again: other work on the machine only ever adds time)."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([str(Path(lib.PYTHON).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               str(path)], env=env, capture_output=True, text=True, timeout=1800)
        elapsed = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"ansible-playbook {path.name} failed: {done.stdout[-3000:]}{done.stderr[-2000:]}")
        changed = int(re.search(r"changed=(\d+)", done.stdout).group(1))
        best = min(best or elapsed, elapsed)
    return best, changed


def requests_logged(server):
    return len(ACCESS.findall(server.log()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--items", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    count = args.items or (5 if args.smoke else 50)
    with tempfile.TemporaryDirectory(prefix="bench-ansible-") as folder:
        folder = Path(folder)
        server = Server(folder)
        server.start()
        try:
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(lib.ROOT), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                       ANSIBLE_HOME=str(folder / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(folder / "tmp"),
                       ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", PIXSTOR_URL=server.url,
                       PIXSTOR_USERNAME="admin", PIXSTOR_PASSWORD=server.admin_password,
                       PIXSTOR_TOKEN_CACHE_DIR=str(folder / "tokens"),
                       ANSIBLE_PYTHON_INTERPRETER=lib.PYTHON)
            for n in range(count):
                (folder / "folders" / f"f{n}").mkdir(parents=True)
            spaces, one_space = playbook(folder, "spaces", count, "space"), playbook(folder, "space1", 1, "space")
            files, one_file = playbook(folder, "files", count, "file"), playbook(folder, "file1", 1, "file")
            created, changed = run(spaces, env)
            assert changed == 1, f"the first loop changed {changed} task(s)"
            before = requests_logged(server)
            noop, changed = run(spaces, env)
            per_item_requests = (requests_logged(server) - before) / count
            assert changed == 0, "the second loop changed something"
            noop = min(noop, run(spaces, env, REPEAT - 1)[0])
            noop_one, _ = run(one_space, env, REPEAT)
            file_loop, changed = run(files, env, REPEAT)
            assert changed == 0
            file_one, _ = run(one_file, env, REPEAT)
        finally:
            server.stop()
    space_item = (noop - noop_one) / (count - 1)
    file_item = (file_loop - file_one) / (count - 1)
    results = {"items": count, "create_loop_s": round(created, 3), "noop_loop_s": round(noop, 3),
               "noop_one_s": round(noop_one, 3), "file_loop_s": round(file_loop, 3), "file_one_s": round(file_one, 3),
               "pixstor_space_noop_item_s": round(space_item, 4), "file_noop_item_s": round(file_item, 4),
               "ratio": lib.ratio(space_item, file_item), "target_ratio": 1.1,
               "http_requests_per_noop_item": per_item_requests, "target_http_requests": 2}
    print(f"bench.ansible: {count} items; created in {created:.1f} s; no-op pixstor_space item "
          f"{space_item * 1000:.0f} ms, ansible.builtin.file no-op item {file_item * 1000:.0f} ms: ratio "
          f"{results['ratio']:.2f}x; {per_item_requests:.2f} HTTP requests per no-op item")
    out = Path(args.out) if args.out else lib.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    plt = lib.pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    labels = ["pixstor_space\ncreate", "pixstor_space\nno-op", "builtin.file\nno-op"]
    values = [(created - noop_one) / (count - 1) * 1000 if count > 1 else created * 1000, space_item * 1000,
              file_item * 1000]
    axis.bar(labels, values, color=["tab:orange", "tab:blue", "tab:grey"])
    axis.set_ylabel("ms per loop item")
    axis.set_title(f"playbook loop of {count} items (per item, start-up excluded)")
    fig.tight_layout()
    fig.savefig(out / "ansible.png", dpi=80)
    print(f"results: {lib.save('ansible', results, out)}")


if __name__ == "__main__":
    main()
