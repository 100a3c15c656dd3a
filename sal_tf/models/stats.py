"""Parameter and FLOP counts of a functional model (conv / dense layers).

FLOPs are counted as 2 × multiply-accumulates of the Conv2D and Dense layers
(the convention of the paper's ResNet figures); BN, ReLU, pooling and adds
are ignored (< 1 % here).
"""

import keras


def forward_flops(model):
    """Forward FLOPs per image of a built functional model."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += 2 * kh * kw * cin * cout * h * w // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def model_stats(model):
    """dict: parameters (total), forward GFLOPs per image."""
    return {"parameters": int(model.count_params()), "gflops_per_image": forward_flops(model) / 1e9}
