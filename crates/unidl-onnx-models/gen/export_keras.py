"""TensorFlow/Keras -> ONNX for crates/unidl-onnx-models (issue 5).

Run (venv with tensorflow-cpu 2.21.0, tf2onnx, onnx, onnxruntime):
    /var/cache/unidl/interop-venvs/tf/bin/python crates/unidl-onnx-models/gen/export_keras.py

Writes, each with a .json record (inputs, Keras's logits, ONNX ops, versions):
- onnx/refused/keras_ref.onnx: the interop reference model
  (unidl-interop/tests/fixtures/keras/ref.keras, built by gen_keras.py)
  converted with tf2onnx.convert.from_keras (opset 17, dynamic batch), which
  burn-onnx 0.22.0 refuses (see docs/INTEROP.md);
- onnx/keras_ref_folded.onnx: the same model converted with a static batch
  of 2, then constant-folded by onnxruntime's basic graph optimisation
  (standard ONNX ops only), which burn-onnx imports;
- onnx/keras_cnn.onnx: the reduced model (NCHW->NHWC permute, conv,
BatchNormalization, ReLU, max-pool, global average, dense) with seeded random
weights.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf2onnx  # noqa: E402

import common  # noqa: E402


def cnn():
    x_in = keras.Input(shape=(3, 16, 16), name="x")
    h = keras.layers.Permute((2, 3, 1), name="to_nhwc")(x_in)
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.MaxPooling2D(2, 2, name="pool")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(x_in, keras.layers.Dense(5, name="fc")(h), name="cnn")


def main():
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "tf2onnx": tf2onnx.__version__, "numpy": np.__version__}
    exporter = f"tf2onnx.convert.from_keras {tf2onnx.__version__}"
    io = common.interop_io("keras")
    x = np.array(io["x"], dtype=np.float32).reshape(io["x_shape"])
    t = np.array(io["t"], dtype=np.int32).reshape(io["t_shape"])
    x_spec = tf.TensorSpec((None, 3, 16, 16), tf.float32, name="x")

    m = keras.models.load_model(os.path.join(common.INTEROP_FIXTURES, "keras", "ref.keras"))
    logits = np.asarray(m([x, t], training=False))
    assert np.abs(logits - np.array(io["logits"]).reshape(logits.shape)).max() < 1e-5
    spec = (x_spec, tf.TensorSpec((None, 6), tf.int32, name="t"))
    tf2onnx.convert.from_keras(m, input_signature=spec, opset=17,
                               output_path=common.onnx_path("keras_ref", refused=True))
    common.write_record("keras_ref", "keras", "reference", versions,
                        {"x": x, "t": t}, logits, exporter, refused=True)

    static = (tf.TensorSpec(x.shape, tf.float32, name="x"),
              tf.TensorSpec(t.shape, tf.int32, name="t"))
    folded = common.onnx_path("keras_ref_folded")
    tf2onnx.convert.from_keras(m, input_signature=static, opset=17, output_path=folded)
    common.ort_constant_fold(folded, folded)
    common.write_record("keras_ref_folded", "keras", "reference", versions,
                        {"x": x, "t": t}, logits,
                        exporter + " (static batch 2) + onnxruntime ORT_ENABLE_BASIC folding")

    keras.utils.set_random_seed(17)
    c = cnn()
    rng = np.random.default_rng(17)
    bn = c.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 1.5, 8).astype("float32"),
                    rng.uniform(-0.5, 0.5, 8).astype("float32"),
                    rng.uniform(-0.5, 0.5, 8).astype("float32"),
                    rng.uniform(0.5, 1.5, 8).astype("float32")])
    conv = c.get_layer("conv")
    conv.set_weights([conv.get_weights()[0], rng.uniform(-0.3, 0.3, 8).astype("float32")])
    logits = np.asarray(c(x, training=False))
    tf2onnx.convert.from_keras(c, input_signature=(x_spec,), opset=17,
                               output_path=common.onnx_path("keras_cnn"))
    common.write_record("keras_cnn", "keras", "reduced (conv+bn+pool+linear)", versions,
                        {"x": x}, logits, exporter)


if __name__ == "__main__":
    sys.exit(main())
