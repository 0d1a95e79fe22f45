"""Adam whose update of each variable is one fused kernel.

Keras's Adam updates a variable with separate operations (the first moment, the second
moment, then the variable), each a pass over the whole tensor. On a CPU that memory
traffic, not the arithmetic, is most of an update, and for the lifting regressor
(millions of weights, small batches) it was about half of a training step
(tools/benchmark_regressor.py). `FusedAdam` makes the same update with TensorFlow's
ResourceApplyAdam kernel, one pass:

  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
  m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
  w -= alpha * m / (sqrt(v) + epsilon)

which is Keras's own formula; only `1 - beta` is taken in float32 (Keras takes it in
float64, then rounds): 1 - 0.999 is then 0.00099998713, 1.3e-5 relative below 0.001,
the nearest a float32 0.999 allows. The slots
are Keras's (`m`, `v` per variable, `iterations`), so checkpoints of either optimizer
restore into the other. Sparse gradients, AMSGrad and float16 variables take Keras's path.
"""

import tensorflow as tf


class FusedAdam(tf.keras.optimizers.Adam):
  """tf.keras.optimizers.Adam with one fused kernel per dense variable update."""

  def __init__(self, learning_rate=0.001, **kwargs):
    # The fused kernel is its own compiled code; XLA would compile it again.
    kwargs.setdefault('jit_compile', False)
    kwargs.setdefault('name', 'Adam')
    super().__init__(learning_rate, **kwargs)

  def update_step(self, gradient, variable):
    if (isinstance(gradient, tf.IndexedSlices) or self.amsgrad
        or variable.dtype not in (tf.float32, tf.float64)):
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    index = self._index_dict[self._var_key(variable)]
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    return tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].handle,
        v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step), lr=tf.cast(self.learning_rate, dtype),
        beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(gradient, dtype), use_locking=False, use_nesterov=False)
