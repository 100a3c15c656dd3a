"""The line of an experiment's report that says how its runs were trained (Table 1, Tables 2 / 3)."""


def schedule_notes(base):
    """'preset: ...; backbone: ...; stage 1: ...; stage 2: ...' of the `TrainConfig` every run starts from."""
    s1, s2 = base.stage1, base.stage2
    cap = f"; at most {base.max_steps_per_epoch} steps/epoch" if base.max_steps_per_epoch else ""
    return (
        f"preset: {base.preset}; backbone: {base.backbone_weights}; "
        f"stage 1: {s1.epochs} epochs, lr {s1.learning_rate}, batch {s1.batch_size}; "
        f"stage 2: {s2.epochs} epochs, lr {s2.learning_rate}, P×K {s2.num_ids}×{s2.num_instances}{cap}"
    )
