"""tap.py - the TAP reporting shared by the Python test drivers: collect
named checks, then print them as TAP and exit non-zero if any failed."""
import sys

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
            print("# " + detail[:3000].replace("\n", "\n# "))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
