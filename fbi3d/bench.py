"""Shared output of the benchmarks under tools/: every result is printed and saved."""

import json
import os


def write_json(path, result):
  """Writes `result` as indented JSON to `path` (creating its folder) and says where."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {path}')
