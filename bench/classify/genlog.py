#!/usr/bin/env python3
# genlog.py - writes a large synthetic GitHub Actions job log for the
# classification benchmark: realistic noise (timestamped, ANSI-coloured
# cargo/npm/docker/test progress lines, group markers, deprecation warnings)
# with blocks of real CI output sprinkled in (EXCERPTS: one line per line,
# taken from real logs with their error lines removed by run.sh), and one
# real failure at the end. Usage: genlog.py OUT SIZE_MB EXCERPTS.txt
import random
import sys


def noise_lines(rng):
    crates = ['serde', 'tokio', 'hyper', 'rand', 'regex', 'clap', 'anyhow', 'syn', 'quote']
    pkgs = ['request@2.88.2', 'uuid@3.4.0', 'har-validator@5.1.5', 'glob@7.2.3', 'inflight@1.0.6']
    out = []
    for i in range(4000):
        k = rng.randrange(12)
        c = rng.choice(crates)
        if k == 0:
            out.append('   \x1b[1m\x1b[32mCompiling\x1b[0m %s v1.%d.%d' % (c, i % 40, i % 7))
        elif k == 1:
            out.append('npm WARN deprecated %s: this library is no longer supported' % rng.choice(pkgs))
        elif k == 2:
            out.append('test %s::tests::case_%d ... ok' % (c, i))
        elif k == 3:
            out.append('#%d sha256:%064x %d.%dMB / 45.2MB %d.%ds' % (i % 60, rng.getrandbits(256), i % 40, i % 10, i % 9, i % 10))
        elif k == 4:
            out.append('##[group]Run cargo build --workspace --release')
        elif k == 5:
            out.append('##[endgroup]')
        elif k == 6:
            out.append('warning: unused variable: `x%d`' % i)
        elif k == 7:
            out.append('  --> src/module_%d.rs:%d:%d' % (i % 50, i % 300, i % 80))
        elif k == 8:
            out.append('Downloaded %s v1.%d.0 (registry `crates-io`)' % (c, i % 30))
        elif k == 9:
            out.append('\x1b[36m[INFO]\x1b[0m processing batch %d of 4000 (%d items)' % (i, i * 3))
        elif k == 10:
            out.append('npm WARN EBADENGINE Unsupported engine { package: "vite@5.%d.0", required: { node: ">=18" } }' % (i % 9))
        else:
            out.append('   Fresh %s v0.%d.%d' % (c, i % 12, i % 5))
    return out


def main():
    out, size_mb, excerpts = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(42)
    real = [l.rstrip('\n') for l in open(excerpts, encoding='utf-8', errors='replace')]
    if not real:
        real = ['(no excerpts)']
    noise = noise_lines(rng)
    target = size_mb * 1024 * 1024
    written = 0
    sec = 0
    with open(out, 'w', encoding='utf-8', newline='\n') as f:
        while written < target:
            block = []
            for _ in range(2000):
                sec += 1
                ts = '2024-01-15T%02d:%02d:%02d.%07dZ ' % (sec // 3600 % 24, sec // 60 % 60, sec % 60, sec * 7919 % 10000000)
                block.append(ts + rng.choice(noise))
            if rng.randrange(4) == 0:
                # a block of real CI output in the middle
                k = rng.randrange(len(real))
                block.extend(real[k:k + rng.randrange(5, 40)])
            text = '\n'.join(block) + '\n'
            f.write(text)
            written += len(text.encode('utf-8'))
        # the real failure at the end
        f.write('2024-01-15T23:59:58.0000000Z error[E0308]: mismatched types\n')
        f.write('2024-01-15T23:59:58.0000001Z   --> src/lib.rs:10:5\n')
        f.write('2024-01-15T23:59:59.0000000Z error: could not compile `app` (lib) due to 1 previous error\n')
        f.write('2024-01-15T23:59:59.1000000Z ##[error]Process completed with exit code 101.\n')


if __name__ == '__main__':
    main()
