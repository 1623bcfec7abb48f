"""tap.py - the TAP reporting shared by the Python test drivers: collect
named checks, then print them as TAP and exit non-zero if any failed."""
import shutil
import subprocess
import sys
import traceback

results = []


def check(name, cond, detail=""):
    """Records one check; detail is printed (as TAP comments) when it fails."""
    results.append((name, bool(cond), str(detail)))


def finish():
    """Prints the TAP stream and exits 1 if any check failed, else 0."""
    failed = 0
    print("TAP version 13")
    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            failed += 1
            print("# " + detail[:6000].replace("\n", "\n# "))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


def run(main, on_error=None, done=None):
    """Runs a driver's main(), which ends in finish(). An exception is a
    failed check carrying its traceback and on_error()'s text (say, the end
    of a server's log), so the run still prints its TAP stream and says
    where it stopped, then done() (finish() by default)."""
    try:
        main()
    except Exception:
        detail = traceback.format_exc()
        if on_error:
            try:
                detail = detail[-1500:] + "\n" + on_error()
            except Exception as e:  # the report must not hide the first error
                detail += f"\n(on_error failed: {e!r})"
        check("the driver ran to its end", False, detail)
        (done or finish)()


def reap(procs, tmp=None):
    """Ends the driver's processes still running (TERM, then KILL after
    20 s) and removes its scratch directory tmp."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
