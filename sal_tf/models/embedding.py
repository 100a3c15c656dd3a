"""The images → embedding part of a model: what serving, export and `sal_tf.load_embedder` run."""

import keras


def embedding_model_of(model):
    """(images → embedding Keras model, (H, W)) of a `SALModel`, a dict-output model or an embedding model.

    Raises:
        ValueError: the model does not take fixed-size RGB images [B, H, W, 3] or has no [B, D] embedding.
    """
    if hasattr(model, "embedding_model"):
        emb = model.embedding_model()
    elif isinstance(model.output, dict):
        if "embedding" not in model.output:
            raise ValueError(f"Model outputs {sorted(model.output)}; expected an 'embedding' output.")
        emb = keras.Model(model.input, model.output["embedding"])
    else:
        emb = model
    shape = emb.input_shape
    if len(shape) != 4 or shape[-1] != 3 or shape[1] is None or shape[2] is None:
        raise ValueError(f"Expected a model on images [B, H, W, 3] of a fixed size; input shape is {shape}.")
    if len(emb.output_shape) != 2:
        raise ValueError(f"Expected an embedding output [B, D]; output shape is {emb.output_shape}.")
    return emb, tuple(int(s) for s in getattr(model, "image_size", shape[1:3]))
