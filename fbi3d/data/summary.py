"""A readable summary of a converted data set's manifest."""

import numpy as np

from fbi3d import skeleton


def format_manifest(manifest):
  lines = [f'crop size {manifest["crop_size"]} px, FBI threshold '
           f'{manifest.get("fbi_threshold_deg")} deg, from {manifest.get("input_dir")}']
  lines.append(f'{"split":<6} {"examples":>9} {"skipped":>8}  crops (joints2d/box/whole)  3D')
  for name, split in manifest['splits'].items():
    modes = split.get('crop_modes', {})
    crops = '/'.join(str(modes.get(k, 0)) for k in ('joints2d', 'box', 'whole_image'))
    # None: the source counts its skips in all only (skipped_by_reason, below).
    num_skipped = split.get('num_skipped', 0)
    shown = '-' if num_skipped is None else num_skipped
    lines.append(f'{name:<6} {split["num_examples"]:>9} {shown:>8}  '
                 f'{crops:<26}  {"yes" if split.get("has_pose3d") else "no"}')
  skipped = manifest.get('skipped_by_reason') or {}
  if skipped:
    lines.append('skipped: ' + ', '.join(f'{k} {v}' for k, v in sorted(skipped.items())))
  train = manifest['splits'].get('train')
  if train:
    hist = train.get('action_histogram') or {}
    lines.append('train actions: ' + ' '.join(
        f'{a}:{hist.get(a, 0)}' for a in list(skeleton.ACTIONS) + ['unknown']))
    balance = train.get('fbi_class_balance')
    if balance:
      balance = np.asarray(balance)
      lines.append('train FBI class balance (forward / backward / parallel):')
      for name, row in zip(skeleton.FBI_BONE_NAMES, balance):
        lines.append(f'  {name:<22} ' + ' / '.join(f'{v:5.1%}' for v in row))
      lines.append('  all bones              ' + ' / '.join(
          f'{v:5.1%}' for v in balance.mean(axis=0)))
  for note in manifest.get('notes') or []:
    lines.append(f'note: {note}')
  return '\n'.join(lines)
