"""Image models (stacked hourglass, multimodal generator) and small model helpers."""

import numpy as np


def count_params(model, trainable_only=False):
  """Number of scalars in a model's (trainable) weights."""
  weights = model.trainable_weights if trainable_only else model.weights
  return int(sum(np.prod(w.shape) for w in weights))
