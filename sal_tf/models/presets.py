"""Named model configurations (paper §3.1, §4.5), kept apart from the model code.

Each preset is a dict of `SALModel` constructor arguments (minus `num_classes`); all use
the SAL network (ResNet50, `depth=50`, with stage6). `build_model(preset, depth=101)` /
`stage6=False` override them (Table 4 "ResNet101 (Soft)" / the plain ResNet baselines).

* `paper`: ResNet50 at 256×128, the network of the paper (BUILD.md "Model" lists the
  parameters and FLOPs of each preset).
* `tiny`: the same topology with every width divided by 8, at 64×32; for tests
  and the demo job.
* `cifar`: ResNet50 with a 3×3 stride-1 stem and no max-pool, at 32×32
  (paper §4.5, Table 4).
"""

_SAL = dict(
    stem="imagenet",
    dilation=True,
    multi_level=True,
    stage6_dilation=2,
    depth=50,
    stage6=True,
    bnneck=False,
    last_stride=2,
)
PRESETS = {
    "paper": dict(_SAL, image_size=(256, 128), width_divisor=1, embedding_dim=1024),
    "tiny": dict(_SAL, image_size=(64, 32), width_divisor=8, embedding_dim=128),
    "cifar": dict(_SAL, image_size=(32, 32), width_divisor=1, embedding_dim=1024, stem="cifar"),
}


def get_preset(name):
    """Returns a copy of the preset `name`'s constructor arguments."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model preset {name!r}; expected one of {sorted(PRESETS)}.")
    return dict(PRESETS[name])
