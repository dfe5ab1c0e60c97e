"""The recognition network: a small convolutional CTC reader (no recurrent layers, so it quantises to int8).

Input: (H, W, 1) grayscale in [0, 1]. Four conv blocks shrink height by 16 and width by 4; a final conv
folds the remaining height into ``rows`` text rows (1 for plates, 2 for container codes painted in one
or two lines), which are laid end to end as one sequence (top row first), so a two-line code is read
line by line. A global context vector (the mean over the sequence) is added to every step, telling
each column whether the code is laid out in one line or two. Two 1-D convs along the sequence, then
per-step logits over ``0-9A-Z`` + blank.
"""

from __future__ import annotations

import tensorflow as tf

NUM_CLASSES = 37  # 36 characters + CTC blank (last)


def _block(x: tf.Tensor, filters: int, pool: tuple[int, int]) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU()(x)
    return tf.keras.layers.MaxPooling2D(pool)(x)


def build(
    input_hw: tuple[int, int],
    rows: int,
    width: int = 96,
    channels: tuple[int, int, int, int] = (8, 16, 32, 48),
) -> tf.keras.Model:
    """The logits model: (batch, H, W, 1) -> (batch, rows * W / 4, NUM_CLASSES)."""
    h, w = input_hw
    if h % 16 or w % 4 or (h // 16) % rows:
        raise ValueError(f"input {input_hw} does not fold into {rows} rows")
    inp = tf.keras.Input((h, w, 1), name="image")
    x = _block(inp, channels[0], (2, 2))
    x = _block(x, channels[1], (2, 2))
    x = _block(x, channels[2], (2, 1))
    x = _block(x, channels[3], (2, 1))
    fold = h // 16 // rows
    x = tf.keras.layers.Conv2D(width, (fold, 1), strides=(fold, 1), use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU()(x)
    steps = rows * (w // 4)
    x = tf.keras.layers.Reshape((steps, width))(x)
    ctx = tf.keras.layers.GlobalAveragePooling1D()(x)
    ctx = tf.keras.layers.Dense(width, activation="relu")(ctx)
    ctx = tf.keras.layers.Reshape((1, width))(ctx)
    x = tf.keras.layers.Add()([x, ctx])
    for _ in range(2):
        x = tf.keras.layers.Conv1D(width, 5, padding="same", use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization()(x)
        x = tf.keras.layers.ReLU()(x)
    logits = tf.keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    return tf.keras.Model(inp, logits)


def with_softmax(model: tf.keras.Model) -> tf.keras.Model:
    """The shipped form: per-step class probabilities."""
    probs = tf.keras.layers.Softmax(name="probs")(model.output)
    return tf.keras.Model(model.input, probs)
