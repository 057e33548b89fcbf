"""Compare two folders of benchmark records (``motionsynth bench --json``): every file must be identical.

usage: python scripts/compare_records.py BEFORE AFTER   (exit 1 and a diff for any difference or missing file)
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path


def main() -> int:
    before, after = (Path(a) for a in sys.argv[1:3])
    same = True
    for f in sorted(before.glob("*.json")):
        g = after / f.name
        if not g.is_file():
            print(f"MISSING   {f.name}")
            same = False
            continue
        a, b = json.loads(f.read_text()), json.loads(g.read_text())
        print(f"{'IDENTICAL' if a == b else 'DIFFERENT'} {f.name}")
        if a != b:
            same = False
            diff = difflib.unified_diff(json.dumps(a, indent=1).splitlines(), json.dumps(b, indent=1).splitlines(),
                                        lineterm="")
            print("\n".join(list(diff)[:40]))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
