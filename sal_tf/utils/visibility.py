"""The visibility below which a person in a MOTChallenge sequence is neither detected nor evaluated.

Visibility is the share of a person's box seen in the frame (`gt.txt`'s 9th column). The tracker's
evaluation ignores ground-truth boxes less visible (`sal_tf.tracking.run.MIN_VISIBILITY`, the default
of `sal-track --min_visibility`), and the oracle detector of the generated sequences
(`sal_tf/data/demo_sequences.py`) leaves them out of `det.txt`, so that the detections and what is
evaluated agree. `sal_tf.data` may not import `sal_tf.tracking` (tests/test_layering.py), so the value
lives here, below both, as `sal_tf/utils/person_ids.py` does for the ids.
"""

MIN_VISIBILITY = 0.3
