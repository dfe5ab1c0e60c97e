"""The recognition network: a small convolutional CTC reader (no recurrent layers, so it quantises to int8).

Input: (H, W, 1) grayscale in [0, 1], one line of text (a container code painted in two lines arrives
with its lines laid end to end by ``edge_agent.recognition.preprocess_lines``). Four conv blocks shrink
height by 16 and width by ``step_px`` (4 for both shipped models; 2 gives narrow repeated characters
such as ``II`` more room but did not converge within the CPU budget); a final conv folds the remaining
height away, leaving one feature vector per ``step_px`` columns. A global context vector (the mean over
the sequence) is added to every step; two 1-D convs along the sequence; per-step logits over
``0-9A-Z`` + blank (CTC).
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
    step_px: int = 4,
    width: int = 96,
    channels: tuple[int, int, int, int] = (8, 16, 32, 48),
) -> tf.keras.Model:
    """The logits model: (batch, H, W, 1) -> (batch, W / step_px, NUM_CLASSES); ``step_px`` is 2 or 4."""
    h, w = input_hw
    if h % 16 or w % step_px or step_px not in (2, 4):
        raise ValueError(f"input {input_hw}: height must be a multiple of 16, width of step_px (2 or 4)")
    inp = tf.keras.Input((h, w, 1), name="image")
    x = _block(inp, channels[0], (2, 2))
    x = _block(x, channels[1], (2, step_px // 2))
    x = _block(x, channels[2], (2, 1))
    x = _block(x, channels[3], (2, 1))
    x = tf.keras.layers.Conv2D(width, (h // 16, 1), use_bias=False)(x)  # fold the height away
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU()(x)
    x = tf.keras.layers.Reshape((w // step_px, width))(x)
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


def _conv(x: tf.Tensor, filters: int, kernel: int | tuple[int, int] = 3, strides: int = 1) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.layers.ReLU()(x)


def build_crop_reader(input_hw: tuple[int, int] = (64, 128), width: int = 128) -> tf.keras.Model:
    """The plate crop reader: (batch, 64, 128, 1) -> (batch, 32, NUM_CLASSES), about 0.3 M parameters.

    A stride-2 stem (16 channels), three stages (32, 64, 96 channels) that halve the height each and
    the width once more, a conv folding the last 4 rows away, a global context vector added to every
    one of the 32 steps (4 input columns each), two 1-D convs along the sequence, per-step logits.
    """
    h, w = input_hw
    if h % 16 or w % 4:
        raise ValueError(f"input {input_hw}: height must be a multiple of 16, width of 4")
    inp = tf.keras.Input((h, w, 1), name="image")
    x = _conv(inp, 16, 3, strides=2)  # h/2, w/2
    x = _conv(x, 32)
    x = tf.keras.layers.MaxPooling2D((2, 2))(x)  # h/4, w/4
    x = _conv(x, 64)
    x = tf.keras.layers.MaxPooling2D((2, 1))(x)  # h/8
    x = _conv(x, 96)
    x = tf.keras.layers.MaxPooling2D((2, 1))(x)  # h/16
    x = tf.keras.layers.Conv2D(width, (h // 16, 1), use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU()(x)
    x = tf.keras.layers.Reshape((w // 4, width))(x)
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
