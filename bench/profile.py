#!/usr/bin/env python3
"""
The top functions of a callgrind profile by their own instructions (self
cost, what the function's own code executed, not its callees), and who
calls the heaviest library functions (memset, memcpy, vfprintf: a cost
there belongs to whoever asked for it).

    bench/instructions.py --keep build/bench/profile    (writes hit/miss/noka)
    bench/profile.py build/bench/profile/miss.callgrind [N] [--per 200]

--per divides by the number of requests the profile covers (200 for the
profiles instructions.py keeps), to print instructions per request.
Reads the callgrind format directly (fn=, calls= and cost lines), so it
needs nothing beyond Python.
"""
import argparse
import collections
import re

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def _name(table, text):
    """callgrind compresses repeated names to "(id)"; the first use is
    "(id) name"."""
    m = NAME.match(text)
    if not m:
        return text
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), text)


def read(path):
    """(self cost per function, {callee: {caller: inclusive cost}}, total)."""
    own = collections.Counter()
    callers = collections.defaultdict(collections.Counter)
    names, fn, callee, in_call, total = {}, None, None, False, 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = _name(names, line[3:])
            elif line.startswith("cfn="):
                callee = _name(names, line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                cost = int(line.split()[-1])
                if in_call:  # the line after calls=: the call's inclusive cost
                    callers[callee][fn] += cost
                    in_call = False
                else:
                    own[fn] += cost
    return own, callers, total


def main():
    ap = argparse.ArgumentParser(description="top self-cost functions of a callgrind profile")
    ap.add_argument("profile")
    ap.add_argument("top", nargs="?", type=int, default=10)
    ap.add_argument("--per", type=int, default=1, help="requests the profile covers")
    args = ap.parse_args()
    own, callers, total = read(args.profile)
    total = total or sum(own.values())
    print("%-48s %12s %7s" % ("function (self cost)", "Ir/request", "share"))
    for fn, cost in own.most_common(args.top):
        print("%-48s %12d %6.1f%%" % (fn[:48], cost / args.per, 100.0 * cost / total))
        heavy = callers.get(fn)
        if heavy and re.search(r"mem(set|cpy|move)|printf|xsputn|strlen", fn):
            for caller, c in heavy.most_common(3):
                print("    called from %-34s %12d" % (caller[:34], c / args.per))


if __name__ == "__main__":
    main()
