"""PROVISIONAL recipe (replaced by the researched one)."""
import keras
from keras import layers

EPOCHS = 40
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
PATIENCE = 12
DEFAULT_HYPERPARAMS = {"filters": (32, 32, 64, 64, 128, 128)}


def build_model(*, input_shape=(40, 301), n_classes=8, **hp):
    hp = {**DEFAULT_HYPERPARAMS, **hp}
    inp = keras.Input(shape=input_shape, name="mfcc")
    x = layers.Normalization(axis=1, name="global_norm")(inp)
    x = layers.Permute((2, 1))(x)
    for i, f in enumerate(hp["filters"]):
        x = layers.Conv1D(f, 5, padding="same", activation="relu")(x)
        if i in (1, 3):
            x = layers.MaxPooling1D(2)(x)
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inp, out)


def set_normalisation(model, *, mean, variance):
    import numpy as np
    layer = model.get_layer("global_norm")
    layer.adapt_mean.assign(np.asarray(mean).reshape(layer.adapt_mean.shape))
    layer.adapt_variance.assign(np.asarray(variance).reshape(layer.adapt_variance.shape))
    layer.finalize_state()


def compile_model(model, *, learning_rate, steps_per_epoch, epochs):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
