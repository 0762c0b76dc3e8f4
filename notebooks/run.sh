#!/usr/bin/env bash
# Execute the notebooks headless with the repo's Deno kernel (notebooks/kernels/deno).
#
#   notebooks/run.sh                      # every notebooks/*.ipynb
#   notebooks/run.sh notebooks/x.ipynb    # just these
#
# Executed copies (with outputs) and kernel logs go to out/notebooks/; the committed notebooks are
# not modified. Prints "notebook <name> ok" or "notebook <name> FAILED: <error>" per notebook and
# exits non-zero if a cell of any notebook raised (execution of that notebook stops there).
#
# Environment:
#   MYCELIUM_RUN_DIR      run directory the notebooks read (default: out/membership-10k; relative
#                         paths are taken from the caller's working directory)
#   NOTEBOOK_TIMEOUT      per-cell timeout in seconds (default 3600: a cell may run the simulation)
#   NOTEBOOK_IOPUB_DRAIN  seconds of IOPub silence that end a cell's output (default 0.3, see below)
#
# Needs Python with nbclient (Debian: python3-nbclient) and deno.
#
# Why not plain `jupyter execute` / `jupyter nbconvert --execute`: the Deno kernel (2.x) can
# publish a cell's outputs (execute_result, display_data, stream) on IOPub *after* its
# status=idle message, and nbclient stops collecting a cell's outputs at idle, so plots go
# missing at random. The small nbclient driver below keeps reading that cell's messages until
# IOPub has been quiet for NOTEBOOK_IOPUB_DRAIN seconds.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/out/notebooks"
mkdir -p "$out"

export JUPYTER_PATH="$root/notebooks${JUPYTER_PATH:+:$JUPYTER_PATH}"
export JUPYTER_RUNTIME_DIR="${JUPYTER_RUNTIME_DIR:-$out/.runtime}"
export NO_COLOR=1
export PYDEVD_DISABLE_FILE_VALIDATION=1 # silences a debugpy warning on Python 3.11
if [[ -n "${MYCELIUM_RUN_DIR:-}" ]]; then
  # The kernel runs in notebooks/, so hand it an absolute path.
  MYCELIUM_RUN_DIR="$(realpath -m -- "$MYCELIUM_RUN_DIR")"
  export MYCELIUM_RUN_DIR
fi

# A Python that has nbclient: $JUPYTER_PYTHON, else Debian's, else python3 on PATH.
py=""
for candidate in "${JUPYTER_PYTHON:-}" /usr/bin/python3 python3; do
  if [[ -n "$candidate" ]] && "$candidate" -c 'import nbclient, nbformat' >/dev/null 2>&1; then
    py="$candidate"
    break
  fi
done
if [[ -z "$py" ]]; then
  echo "run.sh: no Python with nbclient (apt-get install python3-nbclient)" >&2
  exit 127
fi
if [[ ! -x "$root/.tools/node_modules/.bin/deno" ]] && ! command -v deno >/dev/null 2>&1; then
  echo "run.sh: deno not found in $root/.tools/node_modules/.bin or PATH" >&2
  exit 127
fi

read -r -d '' driver <<'PY'
import asyncio, os, queue, re, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError
from nbclient.util import ensure_async

src, dst = sys.argv[1], sys.argv[2]
name = os.path.basename(src)
drain = float(os.environ.get("NOTEBOOK_IOPUB_DRAIN", "0.3"))


class DrainingClient(NotebookClient):
    """NotebookClient that also collects a cell's IOPub messages arriving after status=idle."""

    current = None

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self.current = (cell_index, cell.get("id", "?"))
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=drain))
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    pass


nb = nbformat.read(src, as_version=4)
client = DrainingClient(
    nb,
    kernel_name="deno",
    timeout=int(os.environ.get("NOTEBOOK_TIMEOUT", "3600")),
    startup_timeout=120,
    resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
)
started = time.monotonic()
status = 0
try:
    client.execute()
    print(f"notebook {name} ok ({time.monotonic() - started:.1f} s)")
except CellExecutionError as e:
    ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    first, *rest = ansi.sub("", f"{e.ename}: {e.evalue}").splitlines() or [""]
    index, cell_id = client.current or ("?", "?")
    print(f"notebook {name} FAILED: cell {index} ({cell_id}): {first}")
    for line in rest:
        print(f"    {line}")
    status = 1
except Exception as e:  # kernel died, timeout, kernel not found, ...
    print(f"notebook {name} FAILED: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
    status = 1
finally:
    nbformat.write(nb, dst)
sys.exit(status)
PY

shopt -s nullglob
if [[ $# -gt 0 ]]; then
  notebooks=("$@")
else
  notebooks=("$root"/notebooks/*.ipynb)
fi
if [[ ${#notebooks[@]} -eq 0 ]]; then
  echo "run.sh: no notebooks found" >&2
  exit 1
fi

status=0
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb")"
  log="$out/${name%.ipynb}.log"
  # stdout: the one-line verdict (plus the error's further lines); stderr: kernel/driver log.
  verdict="$("$py" -c "$driver" "$nb" "$out/$name" 2>"$log")"
  rc=$?
  if [[ -n "$verdict" ]]; then
    echo "$verdict"
  elif [[ $rc -ne 0 ]]; then
    echo "notebook $name FAILED: driver exited with code $rc"
  fi
  if [[ $rc -ne 0 ]]; then
    status=1
    # Show the kernel/driver log unless it holds nothing but deno's "unstable" banner.
    if grep -qv 'deno jupyter" is unstable' "$log" 2>/dev/null; then
      echo "    (log: ${log#"$root"/}, last lines:)"
      tail -n 15 "$log" | sed 's/^/    /'
    fi
  fi
done
exit "$status"
