#!/usr/bin/env python3
# embed_rules.py - turns the default rules YAML into a C source file that
# defines hl_classify_default_rules (the bytes) and its length, so the binary
# carries its rules. Usage: embed_rules.py INPUT.yaml OUTPUT.c
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, 'rb').read()
    out = ['/* Generated from %s by embed_rules.py; do not edit. */\n' % src.split('/')[-1],
           '#include <stddef.h>\n\n',
           'const char hl_classify_default_rules[] =\n']
    for line in data.splitlines(keepends=True):
        esc = ''.join(c if (32 <= ord(c) < 127 and c not in '"\\?') else '\\%03o' % ord(c)
                      for c in line.decode('latin-1'))
        out.append('\t"%s"\n' % esc)
    out.append('\t"";\n')
    out.append('const size_t hl_classify_default_rules_len = %d;\n' % len(data))
    open(dst, 'w').write(''.join(out))


if __name__ == '__main__':
    main()
